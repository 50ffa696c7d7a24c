"""The bare side of bench/vllm_backend.py, run with the vLLM environment's interpreter:
one ``vllm.LLM`` built with the same arguments as the platform's actor, the same requests
(messages + SamplingParams keyword arguments) in one ``LLM.chat`` call. Prints JSON.

    .venv-vllm/bin/python bench/_vllm_bare.py requests.json
"""

from __future__ import annotations

import json
import sys
import time


def main(path: str) -> None:
    from vllm import LLM, SamplingParams

    with open(path) as fh:
        payload = json.load(fh)
    t0 = time.perf_counter()
    llm = LLM(**payload["engine"])
    load = time.perf_counter() - t0
    requests = payload["requests"]
    params = [SamplingParams(**r["sampling"]) for r in requests]
    started = time.perf_counter()
    outputs = llm.chat([r["messages"] for r in requests], params, use_tqdm=False)
    seconds = time.perf_counter() - started
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    texts = [o.outputs[0].text.strip() for o in outputs]
    result = {"tokens": tokens, "seconds": seconds, "load": load, "texts": texts}
    print("BARE " + json.dumps(result))


if __name__ == "__main__":  # the engine core is a spawned process: build LLM under main
    main(sys.argv[1])
