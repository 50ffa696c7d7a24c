"""Privacy of tabular synthetic data, measured against the holdout (``tabular.holdout``):
how close synthetic rows sit to the training rows (``closeness``: exact copies, DCR,
NNDR), membership-inference attacks (``attacks``), anonymeter's singling-out, linkability
and inference risks (``anonymity``), and the Gower-style distances they share
(``distance``)."""
