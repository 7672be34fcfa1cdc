"""The steps of a run: plain functions over the tables, no Prefect import needed.

Layers, each importing only those below it (checked by `make lint`, see pyproject's importlinter):

    run        plan, shards, the stage wrappers, the run report: the only package that imports stages
    stages     ingest, segment, classify, summarize, aggregate, scoring: independent of each other;
               they meet only through the tables
    shared     inference (models, weights, batching, token frames), formats (readers per format),
               tables (reads several stages share), prose (sentence checks), errors
    storage    (a separate top-level package) schemas, Parquet datasets, the DuckDB warehouse
"""
