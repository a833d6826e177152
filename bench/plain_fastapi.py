"""Baseline (d) of bench/serve.py: the minimal wrapper the seed projects use, a FastAPI route that calls
the model once per request (no batching, no limits, no metrics).

    MODEL_URI=models:/sentiment/2 uvicorn bench.plain_fastapi:app --port 8000
"""

import os

import mlflow
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

model = mlflow.pyfunc.load_model(os.environ["MODEL_URI"])
app = FastAPI()


class Text(BaseModel):
    text: str


@app.get("/health")
def health() -> dict:
    return {"ok": True}


@app.post("/predict")
def predict(body: Text) -> dict:
    row = model.predict(pd.DataFrame({"text": [body.text]})).iloc[0]
    return {"label": row["label"]}
