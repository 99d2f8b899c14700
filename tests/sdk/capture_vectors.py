"""Signature test vectors computed by the official SDKs' own signing code, for fixed inputs.

RPC v1 (HMAC-SHA1): the old core's composer (aliyunsdkcore/auth/composer/rpc_signature_composer.py,
its string to sign and its signature), and tea's `Utils.get_rpcsignature` must give the same
signature. ACS3-HMAC-SHA256: tea's `Utils.get_authorization` on a request with the headers the tea
client sets before signing; its canonical request and string to sign are recorded as it hashes and
signs them. capture.py checks every vector once more with its own reference verifier.

The inputs are fixed (dummy credentials `testid` / `testsecret`), so the vectors come out the same
on every run unless the SDKs' signing changes.
"""

import hashlib

from alibabacloud_tea_openapi import utils as tea_utils
from alibabacloud_tea_openapi.utils import Utils
from aliyunsdkcore.auth.composer import rpc_signature_composer
from darabonba.request import DaraRequest

ACCESS_KEY_ID = "testid"
SECRET = "testsecret"

# Every character the encodings treat differently: `+`, `*`, `~`, `/`, spaces and non-ASCII.
PARAMETERS = ('{"invokeType": "invoke", "scalingGroupId": "asg-bp1", "batchNumber": 2, '
              '"batchPauseOption": "Automatic", "commandContent": "echo hi+ ~/x* \u4e2d"}')
TEMPLATE = "ACS-ESS-RollingUpdateByRunCommandInScalingGroup"
NONCE = "0123456789abcdef0123456789abcdef"
TIMESTAMP = "2024-01-01T12:00:00Z"
# The user-agent the tea client sends (Utils.get_user_agent), fixed here so the vectors do not
# depend on the Python that computes them.
TEA_USER_AGENT = "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"

V1_INPUTS = {
    # The example of Alibaba Cloud's RPC signature documentation.
    "v1_doc_example": ("GET", {
        "AccessKeyId": ACCESS_KEY_ID,
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }),
    # As the old core sends it: an empty SignatureType, still signed.
    "v1_start_execution": ("POST", {
        "AccessKeyId": ACCESS_KEY_ID,
        "Action": "StartExecution",
        "Format": "JSON",
        "Mode": "Automatic",
        "Parameters": PARAMETERS,
        "RegionId": "cn-hangzhou",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": NONCE,
        "SignatureType": "",
        "SignatureVersion": "1.0",
        "TemplateName": TEMPLATE,
        "Timestamp": TIMESTAMP,
        "Version": "2019-06-01",
    }),
}


def acs3_headers(action):
    """The headers the tea client has set when it signs a request without a body, in its order."""
    return {
        "host": "127.0.0.1:8080",
        "x-acs-version": "2019-06-01",
        "x-acs-action": action,
        "user-agent": TEA_USER_AGENT,
        "x-acs-date": TIMESTAMP,
        "x-acs-signature-nonce": NONCE,
        "accept": "application/json",
        "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
        "x-acs-credentials-provider": "static_ak",
    }


ACS3_INPUTS = {
    "acs3_list_executions": ("ListExecutions", {"ExecutionId": "exec-0123456789abcdef", "RegionId": "cn-hangzhou"}),
    "acs3_start_execution": ("StartExecution", {"Parameters": PARAMETERS, "RegionId": "cn-hangzhou",
                                                "TemplateName": TEMPLATE}),
}


def v1_vector(method, params):
    compose = getattr(rpc_signature_composer, "__compose_string_to_sign")
    sign = getattr(rpc_signature_composer, "__get_signature")
    string_to_sign = compose(method, dict(params))
    signature = sign(string_to_sign, SECRET)
    tea_signature = Utils.get_rpcsignature(dict(params), method, SECRET)
    if tea_signature != signature:
        raise AssertionError(f"the old core signs {signature}, tea {tea_signature}")
    return {
        "method": method,
        "params": dict(params),
        "secret": SECRET,
        "string_to_sign": string_to_sign,
        "signature": signature,
    }


def acs3_vector(action, query):
    request = DaraRequest()
    request.method = "POST"
    request.pathname = "/"
    request.query = dict(query)
    request.headers = acs3_headers(action)
    payload = Utils.hex_encode(Utils.hash(b"", "ACS3-HMAC-SHA256"))
    if payload != request.headers["x-acs-content-sha256"]:
        raise AssertionError(f"tea hashes an empty body to {payload}")

    # Record what get_authorization hashes (the canonical request) and signs (the string to sign).
    seen = {}
    original_hash, original_sign = Utils.hash, tea_utils.signature_method

    def hash_spy(raw, sign_type):
        seen["canonical_request"] = raw.decode("utf-8")
        return original_hash(raw, sign_type)

    def sign_spy(secret, source, sign_type):
        seen["string_to_sign"] = source
        return original_sign(secret, source, sign_type)

    Utils.hash = staticmethod(hash_spy)
    tea_utils.signature_method = sign_spy
    try:
        authorization = Utils.get_authorization(request, "ACS3-HMAC-SHA256", payload, ACCESS_KEY_ID, SECRET)
    finally:
        Utils.hash = staticmethod(original_hash)
        tea_utils.signature_method = original_sign
    return {
        "method": request.method,
        "path": request.pathname,
        "query": dict(query),
        "headers": request.headers,
        "secret": SECRET,
        "canonical_request": seen["canonical_request"],
        "string_to_sign": seen["string_to_sign"],
        "authorization": authorization,
    }


def vectors():
    out = {}
    for name, (method, params) in V1_INPUTS.items():
        out[name] = v1_vector(method, params)
    for name, (action, query) in ACS3_INPUTS.items():
        out[name] = acs3_vector(action, query)
    return out
