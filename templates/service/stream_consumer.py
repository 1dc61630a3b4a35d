"""Stream predictions: read rows from one Redis stream, write predictions to another.

    python stream_consumer.py --redis redis://127.0.0.1:6379/0 --input rows --output predictions

Each input entry carries a field `row` (a JSON object: column -> value, as in POST /predict); each
output entry carries `id` (the input entry's id), `prediction` and, for classifiers, `proba`
(JSON), or `error` for a row that cannot be scored. A consumer group (`--group`) lets several
consumers share a stream; entries are acknowledged once their prediction is written, so a
consumer that dies mid-batch leaves them pending for the next.
Needs `redis` (requirements-stream.txt).
"""

import argparse
import json
import math
import signal
import sys
from pathlib import Path
from typing import Any

import redis
from predictor import Predictor

HERE = Path(__file__).resolve().parent


def _row(fields: dict[bytes, bytes], names: list[str]) -> dict[str, Any]:
    raw = json.loads(fields[b"row"])
    if not isinstance(raw, dict):
        raise ValueError("`row` must be a JSON object")
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ValueError(f"unknown column(s): {', '.join(unknown)}")
    return raw


def _finite(record: dict[str, Any]) -> bool:
    values = list((record.get("proba") or {}).values()) or [record["prediction"]]
    return all(not isinstance(v, float) or math.isfinite(v) for v in values)


def process(client: Any, predictor: Predictor, args: argparse.Namespace, consumer: str) -> int:
    """One batch: read up to --batch entries, score them together, write and acknowledge."""
    answer = client.xreadgroup(
        args.group, consumer, {args.input: ">"}, count=args.batch, block=args.block_ms
    )
    if not answer:
        return 0
    entries = answer[0][1]
    names = predictor.feature_names
    good, rows, out = [], [], []
    for entry_id, fields in entries:
        try:
            rows.append(_row(fields, names))
            good.append(entry_id)
        except (KeyError, ValueError) as exc:
            out.append((entry_id, {"error": str(exc)}))
    if rows:
        for entry_id, record in zip(good, predictor.predict_records(rows), strict=True):
            if not _finite(record):
                out.append((entry_id, {"error": "the model cannot score these values"}))
                continue
            fields = {"prediction": json.dumps(record["prediction"])}
            if record.get("proba") is not None:
                fields["proba"] = json.dumps({k: float(v) for k, v in record["proba"].items()})
            out.append((entry_id, fields))
    pipe = client.pipeline()
    for entry_id, fields in out:
        pipe.xadd(args.output, {"id": entry_id, **fields})
    pipe.xack(args.input, args.group, *[entry_id for entry_id, _ in entries])
    pipe.execute()
    return len(entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--input", default="rows")
    parser.add_argument("--output", default="predictions")
    parser.add_argument("--group", default="model")
    parser.add_argument("--consumer", default="consumer-1")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--block-ms", type=int, default=1000)
    parser.add_argument("--model-dir", default=str(HERE / "models" / "champion"))
    parser.add_argument(
        "--max-entries", type=int, default=0, help="stop after this many (0: never)"
    )
    args = parser.parse_args(argv)
    predictor = Predictor.from_folder(args.model_dir)
    client = redis.Redis.from_url(args.redis)
    try:
        client.xgroup_create(args.input, args.group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    done = 0
    while not stopping and (args.max_entries <= 0 or done < args.max_entries):
        done += process(client, predictor, args, args.consumer)
    print(json.dumps({"consumed": done}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
