"""The request mix of bench/load_bench.py, run by locust in its own (gevent) process.

Each user sends one request per second at most (``constant_throughput(1)``), so the arrival
rate is the number of users. Settings come from the environment the benchmark passes in.
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, constant_throughput, task

KEY = os.environ["LOAD_API_KEY"]
WEEKS = os.environ["LOAD_WEEKS"].split(",")
MAX_POST_ID = int(os.environ["LOAD_MAX_POST_ID"])
SERIES_FROM = os.environ["LOAD_SERIES_FROM"]
THEMES = ("refusal_complaint", "switching_intent", "lost_work_claim", "safety_support")
PRODUCTS = ("claude", "chatgpt", "gemini")


class ApiUser(HttpUser):
    """A dashboard reader: mostly weekly summaries, some series, post lists and single posts."""

    wait_time = constant_throughput(1)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {KEY}"

    @task(14)
    def weekly(self) -> None:
        params = {"week": random.choice(WEEKS)}
        if random.random() < 0.25:
            params["product"] = random.choice(PRODUCTS)
        self.client.get("/v1/trends/weekly", params=params, name="/v1/trends/weekly")

    @task(2)
    def series(self) -> None:
        self.client.get(
            "/v1/trends/series",
            params={"themes": random.choice(THEMES), "granularity": "day", "from": SERIES_FROM},
            name="/v1/trends/series",
        )

    @task(2)
    def posts(self) -> None:
        self.client.get(
            "/v1/posts", params={"theme": random.choice(THEMES), "limit": 50}, name="/v1/posts"
        )

    @task(2)
    def post(self) -> None:
        self.client.get(f"/v1/posts/{random.randint(1, MAX_POST_ID)}", name="/v1/posts/{id}")
