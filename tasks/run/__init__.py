"""Run: the plan (models, budgets, config_id), the shards, the shard pipeline (pipeline.py: the
stages in order, without Prefect), their typed results and the run report.

The only package under tasks/ that imports the stages. Reads every table through the stages;
writes `runs` (the run record) and the completion markers.
"""

from tasks.run.plan import Plan, SegmentPlan, make_plan
from tasks.run.shards import Shard, make_shards

__all__ = ["Plan", "SegmentPlan", "Shard", "make_plan", "make_shards"]
