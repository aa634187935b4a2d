"""Filters of role s3_storage, as plain Python with their own tests
(tests/test_filter_plugins.py)."""

from __future__ import annotations

# Words of a failed S3 call that mean the keys were refused.
REFUSED = ("ermission denied", "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "403")


def diagnosis(failed: dict, checks: dict, task: str, store: dict) -> str:
    """What is wrong with the store, for the probe's failure message: the
    first of the checks (DNS, connection, TLS: their registered results, in
    that order) that failed, else what the failed S3 call's message says
    (missing bucket, credentials refused), else the call's own message.
    `failed`: ansible_failed_result; `store`: url, host, port, api_host,
    bucket, access_key."""
    message = str(failed.get("msg", ""))
    reason = next((name for name, result in checks.items() if (result or {}).get("failed")), "")
    if reason == "DNS":
        detail = f"{store['host']} (from {store['url']}) does not resolve on {store['api_host']}"
    elif reason == "connection":
        detail = f"nothing answers on {store['host']}:{store['port']}"
    elif reason == "TLS":
        detail = (
            f"{store['url']} did not pass TLS verification ({message}); give its CA in s3_storage_ca_bundle,"
            " or set s3_storage_verify_tls=false for a test endpoint"
        )
    elif "not found" in message or "NoSuchBucket" in message:
        reason = "missing bucket"
        detail = (
            f"bucket {store['bucket']} does not exist at {store['url']}"
            " (create it, or set s3_storage_create_bucket=true)"
        )
    elif any(word in message for word in REFUSED):
        reason = "403 credentials refused"
        detail = (
            f"{store['url']} refused access key {store['access_key']} (or its secret key)"
            f" for bucket {store['bucket']}"
        )
    else:
        reason, detail = "S3 error", f"{task}: {message}"
    return f"S3 check failed ({reason}): {detail}"


class FilterModule:
    def filters(self):
        return {"s3_storage_diagnosis": diagnosis}
