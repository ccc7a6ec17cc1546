"""Parts of ``bench/pipeline_bench.py``: workloads, Kafka I/O, the worker process, ceilings."""
