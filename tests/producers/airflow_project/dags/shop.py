"""A small real Airflow DAG, run by `airflow dags test` to record OpenLineage events for the
producer fixtures (tests/producers/record.py). Its file reads and writes go through Airflow's
ObjectStoragePath, which reports them as hook lineage to the OpenLineage provider:

    orders.csv -> clean -> clean_orders.csv -> totals -> customer_totals.csv -> report (FAIL)

`report` writes report.txt, then fails: an output the run attempted but did not complete.
"""

import csv
import io
import os
from datetime import datetime

from airflow import DAG
from airflow.io.path import ObjectStoragePath
from airflow.operators.python import PythonOperator

DATA = ObjectStoragePath(f"file://{os.environ['SHOP_DATA']}")


def read(name: str) -> list[dict[str, str]]:
    with (DATA / name).open("r") as f:
        return list(csv.DictReader(io.StringIO(f.read())))


def write(name: str, text: str) -> None:
    with (DATA / name).open("w") as f:
        f.write(text)


def clean() -> None:
    rows = read("orders.csv")
    write("clean_orders.csv", "customer_id,amount\n" + "".join(f"{r['customer_id']},{r['amount']}\n" for r in rows))


def totals() -> None:
    sums: dict[str, float] = {}
    for r in read("clean_orders.csv"):
        sums[r["customer_id"]] = sums.get(r["customer_id"], 0.0) + float(r["amount"])
    write("customer_totals.csv", "customer_id,total\n" + "".join(f"{k},{v}\n" for k, v in sorted(sums.items())))


def report() -> None:
    rows = read("customer_totals.csv")
    write("report.txt", f"{len(rows)} customers\n")
    raise ValueError("report template missing")


with DAG("shop_daily", start_date=datetime(2026, 1, 1), schedule=None, catchup=False) as dag:
    c = PythonOperator(task_id="clean", python_callable=clean)
    t = PythonOperator(task_id="totals", python_callable=totals)
    r = PythonOperator(task_id="report", python_callable=report)
    c >> t >> r
