"""Calls a predictor with NVIDIA's tritonclient (HTTP or gRPC) and prints what it read, as JSON.

A separate process: tritonclient.grpc and kserve register the same protobuf package (``inference``), so
the two cannot be imported into one interpreter.

    python -m tests.triton_probe http|grpc <address> <model> <text> ...
"""

import json
import sys

import numpy as np


def probe(protocol: str, address: str, model: str, texts: list[str]) -> dict:
    if protocol == "grpc":
        import tritonclient.grpc as client_module
    else:
        import tritonclient.http as client_module
    client = client_module.InferenceServerClient(url=address)
    try:
        metadata = (
            client.get_model_metadata(model, as_json=True)
            if protocol == "grpc"
            else client.get_model_metadata(model)
        )
        text = client_module.InferInput("text", [len(texts)], "BYTES")
        binary = {} if protocol == "grpc" else {"binary_data": False}
        text.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object), **binary)
        wanted = [client_module.InferRequestedOutput(name, **binary) for name in ("label", "probabilities")]
        result = client.infer(model, [text], outputs=wanted)
        return {
            "live": client.is_server_live(),
            "ready": client.is_server_ready(),
            "model_ready": client.is_model_ready(model),
            "outputs": [output["name"] for output in metadata["outputs"]],
            "labels": [
                label if isinstance(label, str) else label.decode() for label in result.as_numpy("label")
            ],
            "probabilities": result.as_numpy("probabilities").tolist(),
        }
    finally:
        client.close()


if __name__ == "__main__":
    protocol, address, model, *texts = sys.argv[1:]
    print(json.dumps(probe(protocol, address, model, texts)))
