"""API keys, token buckets and the settings that configure them (no model, no server)."""

from __future__ import annotations

import pytest
from errors import RateLimited, Unauthorized
from pydantic import ValidationError
from security import Guard, RateLimiter, TokenBucket
from settings import Backend, ServiceSettings


class ManualClock:
    def __init__(self) -> None:
        self.time = 100.0

    def __call__(self) -> float:
        return self.time


def test_token_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # one token takes 1/rate seconds to come back
    assert bucket.take(0.5) == 0.0
    assert bucket.take(10.0) == 0.0  # refills, but never beyond the burst
    assert [bucket.take(10.0) for _ in range(3)][-1] > 0


def test_rate_limiter_keeps_one_bucket_per_client_and_forgets_the_oldest() -> None:
    clock = ManualClock()
    limiter = RateLimiter(1.0, 1, max_clients=2, clock=clock)
    assert limiter.check("a") == 0.0
    assert limiter.check("a") > 0  # a is out of tokens
    assert limiter.check("b") == 0.0  # b has its own bucket
    assert limiter.check("c") == 0.0  # evicts a, the least recently seen
    assert limiter.check("a") == 0.0  # a starts afresh
    assert len(limiter._buckets) == 2


def test_rate_limiter_refuses_a_zero_rate() -> None:
    with pytest.raises(ValueError, match="disable the limiter"):
        RateLimiter(0.0, 1)


def test_guard_without_keys_lets_anyone_in_and_identifies_clients_by_address() -> None:
    assert Guard([], None).check(None, "10.0.0.1") == "ip:10.0.0.1"


@pytest.mark.parametrize(
    ("presented", "message"), [(None, "missing API key"), ("", "missing"), ("nope", "invalid")]
)
def test_guard_with_keys_refuses_missing_or_wrong_keys(presented: str | None, message: str) -> None:
    with pytest.raises(Unauthorized, match=message) as caught:
        Guard(["k1", "k2"], None).check(presented, "10.0.0.1")
    assert caught.value.status_code == 401
    assert caught.value.headers == {"WWW-Authenticate": "Bearer"}


def test_guard_accepts_any_configured_key_and_never_exposes_it() -> None:
    guard = Guard(["k1", "secret-key-2"], None)
    client = guard.check("secret-key-2", "10.0.0.1")
    assert client.startswith("key:") and "secret" not in client
    assert guard.check("k1", "10.0.0.1") != client


def test_guard_rate_limits_per_key_with_retry_after() -> None:
    clock = ManualClock()
    guard = Guard(["k1", "k2"], RateLimiter(0.5, 2, clock=clock))
    guard.check("k1", "h")
    guard.check("k1", "h")
    with pytest.raises(RateLimited) as caught:
        guard.check("k1", "h")
    assert caught.value.status_code == 429
    assert caught.value.headers == {"Retry-After": "2"}  # one token per 2 s
    guard.check("k2", "h")  # another key is not affected
    clock.time += 2.0
    guard.check("k1", "h")


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("BACKEND", "onnx-fp32")
    monkeypatch.setenv("MAX_BATCH_SIZE", "1")
    monkeypatch.setenv("API_KEYS", " key-a, key-b ,,")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = ServiceSettings()
    assert settings.model_dir == tmp_path
    assert settings.backend is Backend.ONNX_FP32
    assert settings.max_batch_size == 1
    assert settings.api_keys == ("key-a", "key-b")
    assert settings.log_level == "DEBUG"
    assert "key-a" not in repr(settings)  # secrets stay out of logs and tracebacks


def test_settings_defaults_serve_the_int8_model_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODEL_DIR", "BACKEND", "API_KEYS", "MAX_BATCH_SIZE", "RATE_LIMIT_PER_S"):
        monkeypatch.delenv(name, raising=False)
    settings = ServiceSettings()
    assert settings.backend is Backend.ONNX_INT8
    assert settings.api_keys == ()
    assert settings.rate_limit_per_s == 0
    assert settings.max_batch_size > 1


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("BACKEND", "tensorflow", "backend"),
        ("MAX_BATCH_SIZE", "0", "max_batch_size"),
        ("LOG_LEVEL", "loud", "log_level"),
    ],
)
def test_invalid_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=field):
        ServiceSettings()
