"""Records what Alibaba Cloud's official Python SDKs send, as rollscale's compatibility fixtures.

    scripts/sdk-fixtures          # runs this with the pinned SDKs (scripts/sdk-venv)

A stdlib HTTP server on 127.0.0.1 (a port of the system's choosing) records every request and
answers it with a JSON body of the shape the SDK expects. Each SDK flavour is pointed at it and
makes the same calls:

  old              aliyun-python-sdk-core + aliyun-python-sdk-oos / -ess: RPC v1 (HMAC-SHA1), all
                   parameters in the query, OOS 2019-06-01 and ESS 2014-08-28
  tea-acs3         alibabacloud_oos20190601, its default ACS3-HMAC-SHA256
  tea-rpcv1        alibabacloud_oos20190601 with signature_algorithm "v2" (RPC v1)
  tea-ess20220222  alibabacloud_ess20220222, ACS3-HMAC-SHA256, ESS 2022-02-22
  tea-ess20140828  alibabacloud-ess20140828: RPC v1 with the API parameters in a form body

OOS: StartExecution (its Parameters hold `+`, `*`, `~`, `/`, spaces and non-ASCII text),
ListExecutions, ListTaskExecutions, NotifyExecution, CancelExecution, and a StartExecution that the
server refuses. ESS: DescribeScalingGroups, DescribeScalingInstances, EnterStandby, ExitStandby,
SuspendProcesses, ResumeProcesses (alibabacloud-ess20140828 has no DescribeScalingGroups; three of
its calls are enough for the form body).

Every recorded signature is checked by a reference verifier written here, apart from the SDKs'
code (RPC v1 and ACS3 as the server must compute them); a request it does not verify stops the
run. The SDKs' clocks are set to CAPTURE_TIME (their own date formatting still runs), so the
captures are old enough for the tests of stale timestamps however soon after a regeneration they
run. The nonces are the SDKs' own.

Writes, in the directory given (default crates/rollscale-server/tests/fixtures):
  sdk-captures.json       one object per request: flavour, action, version, time (its Timestamp or
                          x-acs-date), sdk (the packages that sent it), request_line, headers
                          ([name, value] in wire order), body, query and form (decoded), and
                          signature {kind, ok, access_key_id, string_to_sign, and for ACS3
                          canonical_request and payload_hash_ok}
  signature-vectors.json  see capture_vectors.py
Credentials are dummies: LTAIdummyAccessKeyId / dummySecret.
"""

import base64
import calendar
import datetime as datetime_module
import hashlib
import hmac
import http.server
import importlib.metadata
import json
import os
import sys
import threading
import time
import urllib.parse

ACCESS_KEY_ID = "LTAIdummyAccessKeyId"
SECRET = "dummySecret"
REGION = "cn-hangzhou"
CAPTURE_TIME = "2024-01-01T12:00:00Z"

GROUP = "asg-probe0001"
INSTANCES = ["i-probe0001", "i-probe0002"]
PROCESSES = ["ScaleIn", "ScaleOut"]
TEMPLATE = "ACS-ESS-RollingUpdateByRunCommandInScalingGroup"
ERROR_TEMPLATE = "ACS-ESS-ProbeError"
ERROR_CODE = "EntityNotExists.Template"
# A JSON text, as the SDKs take StartExecution's Parameters; commandContent has every character
# the two encodings treat differently.
PARAMETERS = json.dumps({
    "invokeType": "invoke",
    "scalingGroupId": GROUP,
    "batchNumber": 2,
    "batchPauseOption": "Automatic",
    "enterProcess": PROCESSES,
    "exitProcess": PROCESSES,
    "commandContent": "echo hi+ ~/x* \u4e2d",
}, ensure_ascii=False)

OOS = "2019-06-01"
ESS_2014 = "2014-08-28"
ESS_2022 = "2022-02-22"

SDKS = {
    "old": ["aliyun-python-sdk-core", "aliyun-python-sdk-oos", "aliyun-python-sdk-ess"],
    "tea-acs3": ["alibabacloud-oos20190601", "alibabacloud-tea-openapi"],
    "tea-rpcv1": ["alibabacloud-oos20190601", "alibabacloud-tea-openapi"],
    "tea-ess20220222": ["alibabacloud-ess20220222", "alibabacloud-tea-openapi"],
    "tea-ess20140828": ["alibabacloud-ess20140828", "alibabacloud-tea-openapi"],
}

ACS3 = "ACS3-HMAC-SHA256"
V1 = "RPC-v1-HMAC-SHA1"


class Failure(Exception):
    """An SDK did something other than expected, or a signature did not verify."""


def check(condition, message, *context):
    if not condition:
        raise Failure(message + "".join("\n    " + str(c) for c in context))


# ------------------------------------------------------------------ reference verifier

def pct(text):
    """RFC 3986 percent-encoding of the UTF-8 bytes: only A-Z a-z 0-9 - _ . ~ stay literal."""
    return urllib.parse.quote(text, safe="~", encoding="utf-8")


def v1_string_to_sign(method, params):
    canonical = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(params.items()))
    return f"{method}&{pct('/')}&{pct(canonical)}"


def v1_signature(string_to_sign, secret):
    digest = hmac.new((secret + "&").encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def acs3_canonical_request(method, path, query, headers, signed_headers, payload_hash):
    canonical_query = "&".join(f"{k}={pct(v)}" for k, v in sorted(query.items()))
    lower = {}
    for name, value in headers:
        lower.setdefault(name.lower(), value)
    canonical_headers = "".join(f"{name}:{lower.get(name, '').strip()}\n" for name in signed_headers)
    return "\n".join([method, path, canonical_query, canonical_headers, ";".join(signed_headers), payload_hash])


def acs3_string_to_sign(canonical_request):
    return f"{ACS3}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"


def acs3_signature(string_to_sign, secret):
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def parse_authorization(value):
    scheme, _, rest = value.partition(" ")
    check(scheme == ACS3, "an ACS3 Authorization header", value)
    fields = dict(part.split("=", 1) for part in rest.split(","))
    return fields["Credential"], fields["SignedHeaders"].split(";"), fields["Signature"]


def verify(method, path, headers, body, query, form):
    """What the reference verifier makes of a request: the `signature` object of a capture."""
    header = {name.lower(): value for name, value in reversed(headers)}
    if "authorization" in header:
        access_key_id, signed_headers, signature = parse_authorization(header["authorization"])
        payload_hash = header.get("x-acs-content-sha256", "")
        canonical = acs3_canonical_request(method, path, query, headers, signed_headers, payload_hash)
        string_to_sign = acs3_string_to_sign(canonical)
        return {
            "kind": ACS3,
            "ok": hmac.compare_digest(acs3_signature(string_to_sign, SECRET), signature),
            "access_key_id": access_key_id,
            "string_to_sign": string_to_sign,
            "canonical_request": canonical,
            "payload_hash_ok": hashlib.sha256(body).hexdigest() == payload_hash,
        }
    params = {**query, **form}
    signature = params.pop("Signature", None)
    check(signature is not None and params.get("SignatureMethod") == "HMAC-SHA1",
          "neither an Authorization header nor an HMAC-SHA1 Signature", query)
    string_to_sign = v1_string_to_sign(method, params)
    return {
        "kind": V1,
        "ok": hmac.compare_digest(v1_signature(string_to_sign, SECRET), signature),
        "access_key_id": params.get("AccessKeyId"),
        "string_to_sign": string_to_sign,
    }


# ------------------------------------------------------------------ the recording server

def decode_pairs(text, what):
    pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), encoding="utf-8",
                                   errors="strict")
    decoded = dict(pairs)
    check(len(decoded) == len(pairs), f"a {what} key sent twice", text)
    return decoded


def request_id():
    return "5F3C1E2A-0000-4000-8000-" + hashlib.md5(str(time.time_ns()).encode()).hexdigest()[:12].upper()


class Recorder(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.records = []
        self.lock = threading.Lock()
        self.executions = 0

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.server_address[1]}"

    def answer(self, record, params):
        """The status and JSON body the SDK expects for a request."""
        action, version = record["action"], record["version"]
        rid = request_id()
        if params.get("TemplateName") == ERROR_TEMPLATE:
            return 404, {"RequestId": rid, "HostId": "oos.aliyuncs.com", "Code": ERROR_CODE,
                         "Message": "The specified template does not exist."}
        body = {"RequestId": rid}
        if action == "StartExecution":
            with self.lock:
                self.executions += 1
                execution_id = f"exec-probe{self.executions:04d}"
            body["Execution"] = {
                "ExecutionId": execution_id, "TemplateName": params.get("TemplateName", ""),
                "Mode": params.get("Mode", "Automatic"), "Status": "Running", "StatusMessage": "",
                "Parameters": params.get("Parameters", "{}"), "Outputs": "{}", "Counters": {}, "Tags": {},
                "CurrentTasks": [], "StartDate": CAPTURE_TIME, "CreateDate": CAPTURE_TIME,
                "UpdateDate": CAPTURE_TIME, "IsParent": False,
            }
        elif action == "ListExecutions":
            body.update(MaxResults=50, NextToken="", TotalCount=1, Executions=[{
                "ExecutionId": params.get("ExecutionId", ""), "TemplateName": TEMPLATE, "Status": "Running",
                "Parameters": json.loads(PARAMETERS), "Counters": {}, "Tags": {}, "CurrentTasks": [],
            }])
        elif action == "ListTaskExecutions":
            body.update(MaxResults=50, NextToken="", TaskExecutions=[])
        elif action in ("DescribeScalingGroups", "DescribeScalingInstances"):
            # ESS 2014-08-28 wraps its lists in an object, 2022-02-22 does not.
            key, item_key = (("ScalingGroups", "ScalingGroup") if action == "DescribeScalingGroups"
                             else ("ScalingInstances", "ScalingInstance"))
            item = ({"ScalingGroupId": GROUP, "ScalingGroupName": "probe", "LifecycleState": "Active"}
                    if action == "DescribeScalingGroups" else
                    {"ScalingGroupId": GROUP, "InstanceId": INSTANCES[0], "LifecycleState": "InService",
                     "HealthStatus": "Healthy"})
            body.update(TotalCount=1, PageNumber=1, PageSize=10)
            body[key] = {item_key: [item]} if version == ESS_2014 else [item]
        elif action in ("EnterStandby", "ExitStandby"):
            body["ScalingActivityId"] = "asa-probe0001"
        return 200, body


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet
        pass

    def do_GET(self):
        self.record()

    def do_POST(self):
        self.record()

    def record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        path, _, raw_query = self.path.partition("?")
        headers = [[name, value] for name, value in self.headers.items()]
        query = decode_pairs(raw_query, "query")
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        form = decode_pairs(body.decode("utf-8"), "form") if content_type == "application/x-www-form-urlencoded" \
            else {}
        params = {**query, **form}
        lower = {name.lower(): value for name, value in headers}
        record = {
            "action": params.get("Action") or lower.get("x-acs-action"),
            "version": params.get("Version") or lower.get("x-acs-version"),
            "time": params.get("Timestamp") or lower.get("x-acs-date"),
            "request_line": self.requestline,
            "headers": headers,
            "body": body.decode("utf-8"),
            "query": query,
            "form": form,
        }
        try:
            record["signature"] = verify(self.command, path, headers, body, query, form)
        except Exception as error:  # recorded; check_captures reports it
            record["signature"] = {"kind": None, "ok": False, "error": repr(error)}
        status, answer = self.server.answer(record, params)
        with self.server.lock:
            self.server.records.append(record)
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


# ------------------------------------------------------------------ the SDKs' clocks

CAPTURE_EPOCH = calendar.timegm(time.strptime(CAPTURE_TIME, "%Y-%m-%dT%H:%M:%SZ"))


class _FrozenGmtime:
    """The `time` module, but gmtime() without an argument is CAPTURE_TIME."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def gmtime(seconds=None):
        return time.gmtime(CAPTURE_EPOCH if seconds is None else seconds)


class _FrozenDatetime(datetime_module.datetime):
    @classmethod
    def utcnow(cls):
        return cls.fromtimestamp(CAPTURE_EPOCH, datetime_module.timezone.utc).replace(tzinfo=None)


def freeze_sdk_clocks():
    """The old core dates requests with time.gmtime(), tea with datetime.utcnow()."""
    from aliyunsdkcore.utils import parameter_helper
    from alibabacloud_tea_openapi import utils as tea_utils
    parameter_helper.time = _FrozenGmtime()
    tea_utils.datetime = _FrozenDatetime


# ------------------------------------------------------------------ the SDK flavours

class Session:
    """Runs SDK calls one at a time and labels the one request each of them sent."""

    def __init__(self, server):
        self.server = server
        self.captures = []

    def call(self, flavour, action, version, run):
        with self.server.lock:
            before = len(self.server.records)
        result = run()
        with self.server.lock:
            sent = self.server.records[before:]
        check(len(sent) == 1, f"{flavour} {action}: one request (no retries), got {len(sent)}")
        record = sent[0]
        check((record["action"], record["version"]) == (action, version),
              f"{flavour}: sent {record['action']} {record['version']}, meant {action} {version}")
        sdk = ", ".join(f"{name}=={importlib.metadata.version(name)}" for name in SDKS[flavour])
        rest = {k: v for k, v in record.items() if k not in ("action", "version", "time")}
        self.captures.append({"flavour": flavour, "action": action, "version": version, "time": record["time"],
                              "sdk": sdk, **rest})
        return result


def run_old(session):
    from aliyunsdkcore.acs_exception.exceptions import ServerException
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkess.request.v20140828 import (DescribeScalingGroupsRequest, DescribeScalingInstancesRequest,
                                                EnterStandbyRequest, ExitStandbyRequest, ResumeProcessesRequest,
                                                SuspendProcessesRequest)
    from aliyunsdkoos.request.v20190601 import (CancelExecutionRequest, ListExecutionsRequest,
                                                ListTaskExecutionsRequest, NotifyExecutionRequest,
                                                StartExecutionRequest)

    client = AcsClient(ACCESS_KEY_ID, SECRET, REGION, auto_retry=False, timeout=30)

    def call(action, version, request, **params):
        request.set_endpoint(session.server.endpoint)
        request.set_protocol_type("http")
        for name, value in params.items():
            getattr(request, "set_" + name)(value)

        def run():
            body = json.loads(client.do_action_with_exception(request))
            check(isinstance(body.get("RequestId"), str), f"old {action}: a RequestId", body)
            return body
        return session.call("old", action, version, run)

    started = call("StartExecution", OOS, StartExecutionRequest.StartExecutionRequest(),
                   TemplateName=TEMPLATE, Parameters=PARAMETERS, Mode="Automatic")
    execution_id = started["Execution"]["ExecutionId"]
    call("ListExecutions", OOS, ListExecutionsRequest.ListExecutionsRequest(), ExecutionId=execution_id)
    call("ListTaskExecutions", OOS, ListTaskExecutionsRequest.ListTaskExecutionsRequest(), ExecutionId=execution_id)
    call("NotifyExecution", OOS, NotifyExecutionRequest.NotifyExecutionRequest(), ExecutionId=execution_id,
         NotifyType="Approve")
    call("CancelExecution", OOS, CancelExecutionRequest.CancelExecutionRequest(), ExecutionId=execution_id)

    def refused():
        request = StartExecutionRequest.StartExecutionRequest()
        request.set_endpoint(session.server.endpoint)
        request.set_protocol_type("http")
        request.set_TemplateName(ERROR_TEMPLATE)
        try:
            client.do_action_with_exception(request)
        except ServerException as error:
            check(error.get_error_code() == ERROR_CODE, "old: the error code", error)
            return
        raise Failure("old: the refused StartExecution succeeded")
    session.call("old", "StartExecution", OOS, refused)

    call("DescribeScalingGroups", ESS_2014, DescribeScalingGroupsRequest.DescribeScalingGroupsRequest(),
         ScalingGroupIds=[GROUP])
    call("DescribeScalingInstances", ESS_2014, DescribeScalingInstancesRequest.DescribeScalingInstancesRequest(),
         ScalingGroupId=GROUP, InstanceIds=INSTANCES)
    call("EnterStandby", ESS_2014, EnterStandbyRequest.EnterStandbyRequest(), ScalingGroupId=GROUP,
         InstanceIds=INSTANCES[:1])
    call("ExitStandby", ESS_2014, ExitStandbyRequest.ExitStandbyRequest(), ScalingGroupId=GROUP,
         InstanceIds=INSTANCES[:1])
    call("SuspendProcesses", ESS_2014, SuspendProcessesRequest.SuspendProcessesRequest(), ScalingGroupId=GROUP,
         Processs=PROCESSES)
    call("ResumeProcesses", ESS_2014, ResumeProcessesRequest.ResumeProcessesRequest(), ScalingGroupId=GROUP,
         Processs=PROCESSES)


def tea_config(session, signature_algorithm=None, models=None):
    if models is None:
        from alibabacloud_tea_openapi import utils_models as models
    config = models.Config(access_key_id=ACCESS_KEY_ID, access_key_secret=SECRET,
                           endpoint=session.server.endpoint, protocol="http", region_id=REGION,
                           connect_timeout=5000, read_timeout=30000)
    if signature_algorithm:
        config.signature_algorithm = signature_algorithm
    return config


def tea_call(session, flavour, action, version, call):
    def run():
        response = call()
        # The 2021 client's responses have no status_code; it raises on any other than 2xx.
        check(getattr(response, "status_code", 200) == 200 and response.body is not None,
              f"{flavour} {action}: HTTP 200 and a body its model accepts")
        check(isinstance(response.body.request_id, str), f"{flavour} {action}: a RequestId")
        return response.body
    return session.call(flavour, action, version, run)


def run_tea_oos(session, flavour, signature_algorithm):
    from alibabacloud_oos20190601 import models as oos
    from alibabacloud_oos20190601.client import Client

    client = Client(tea_config(session, signature_algorithm))

    def call(action, request):
        method = getattr(client, "".join("_" + c.lower() if c.isupper() else c for c in action).lstrip("_"))
        return tea_call(session, flavour, action, OOS, lambda: method(request))

    started = call("StartExecution", oos.StartExecutionRequest(region_id=REGION, template_name=TEMPLATE,
                                                               parameters=PARAMETERS, mode="Automatic"))
    execution_id = started.execution.execution_id
    check(execution_id, f"{flavour}: StartExecution's ExecutionId")
    call("ListExecutions", oos.ListExecutionsRequest(execution_id=execution_id))
    call("ListTaskExecutions", oos.ListTaskExecutionsRequest(execution_id=execution_id))
    call("NotifyExecution", oos.NotifyExecutionRequest(execution_id=execution_id, notify_type="Approve"))
    call("CancelExecution", oos.CancelExecutionRequest(execution_id=execution_id))

    def refused():
        try:
            client.start_execution(oos.StartExecutionRequest(template_name=ERROR_TEMPLATE))
        except Exception as error:  # tea raises ClientException for a 4xx
            check(getattr(error, "code", None) == ERROR_CODE, f"{flavour}: the error code", error)
            return
        raise Failure(f"{flavour}: the refused StartExecution succeeded")
    session.call(flavour, "StartExecution", OOS, refused)


def run_tea_ess_2022(session):
    from alibabacloud_ess20220222 import models as ess
    from alibabacloud_ess20220222.client import Client

    client = Client(tea_config(session))
    flavour = "tea-ess20220222"

    def call(action, method, request):
        return tea_call(session, flavour, action, ESS_2022, lambda: method(request))

    call("DescribeScalingGroups", client.describe_scaling_groups,
         ess.DescribeScalingGroupsRequest(region_id=REGION, scaling_group_ids=[GROUP]))
    call("DescribeScalingInstances", client.describe_scaling_instances,
         ess.DescribeScalingInstancesRequest(region_id=REGION, scaling_group_id=GROUP))
    # The 2022 EnterStandby request model has no region_id.
    call("EnterStandby", client.enter_standby,
         ess.EnterStandbyRequest(scaling_group_id=GROUP, instance_ids=INSTANCES[:1]))
    call("ExitStandby", client.exit_standby,
         ess.ExitStandbyRequest(region_id=REGION, scaling_group_id=GROUP, instance_ids=INSTANCES[:1]))
    call("SuspendProcesses", client.suspend_processes,
         ess.SuspendProcessesRequest(region_id=REGION, scaling_group_id=GROUP, processes=PROCESSES))
    call("ResumeProcesses", client.resume_processes,
         ess.ResumeProcessesRequest(region_id=REGION, scaling_group_id=GROUP, processes=PROCESSES))


def run_tea_ess_2014(session):
    from alibabacloud_ess20140828 import models as ess
    from alibabacloud_ess20140828.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    client = Client(tea_config(session, models=open_api_models))
    flavour = "tea-ess20140828"

    def call(action, method, request):
        return tea_call(session, flavour, action, ESS_2014, lambda: method(request))

    call("DescribeScalingInstances", client.describe_scaling_instances,
         ess.DescribeScalingInstancesRequest(region_id=REGION, scaling_group_id=GROUP))
    call("EnterStandby", client.enter_standby,
         ess.EnterStandbyRequest(scaling_group_id=GROUP, instance_id=INSTANCES[:1]))
    call("SuspendProcesses", client.suspend_processes,
         ess.SuspendProcessesRequest(scaling_group_id=GROUP, process=PROCESSES[:1]))


# ------------------------------------------------------------------ checks and output

def check_captures(captures):
    for c in captures:
        label = f"{c['flavour']} {c['action']} {c['version']}"
        sig = c["signature"]
        check(sig["ok"], f"{label}: the reference verifier does not verify its signature", c["request_line"])
        check(sig["access_key_id"] == ACCESS_KEY_ID, f"{label}: the AccessKeyId")
        check(sig.get("payload_hash_ok", True), f"{label}: x-acs-content-sha256 is not the body's hash")
        check(c["time"] == CAPTURE_TIME, f"{label}: dated {c['time']}, not the frozen clock's {CAPTURE_TIME}")
    kinds = {(c["flavour"], c["signature"]["kind"]) for c in captures}
    check(kinds == {("old", V1), ("tea-acs3", ACS3), ("tea-rpcv1", V1), ("tea-ess20220222", ACS3),
                    ("tea-ess20140828", V1)}, "each flavour signs with its scheme", sorted(kinds))
    check(all(c["form"] for c in captures if c["flavour"] == "tea-ess20140828"), "tea-ess20140828 sends a form")
    check(not any(c["form"] for c in captures if c["flavour"] != "tea-ess20140828"), "only it sends a form")


def check_vectors(vectors):
    """The SDKs' vectors agree with the reference verifier."""
    for name, v in vectors.items():
        if name.startswith("v1_"):
            sts = v1_string_to_sign(v["method"], v["params"])
            check(sts == v["string_to_sign"], f"{name}: string to sign", sts)
            check(v1_signature(sts, v["secret"]) == v["signature"], f"{name}: signature")
        else:
            _, signed, signature = parse_authorization(v["authorization"])
            canonical = acs3_canonical_request(v["method"], v["path"], v["query"], list(v["headers"].items()),
                                               signed, v["headers"]["x-acs-content-sha256"])
            check(canonical == v["canonical_request"], f"{name}: canonical request", canonical)
            check(acs3_string_to_sign(canonical) == v["string_to_sign"], f"{name}: string to sign")
            check(acs3_signature(v["string_to_sign"], v["secret"]) == signature, f"{name}: signature")


def write_json(path, value):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(path + ".tmp", path)


def main(argv):
    out = argv[0] if argv else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                            "../../crates/rollscale-server/tests/fixtures")
    # The SDKs honour proxy variables and ignore NO_PROXY: loopback must go direct.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(name, None)

    import capture_vectors
    vectors = capture_vectors.vectors()
    check_vectors(vectors)

    freeze_sdk_clocks()
    server = Recorder()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    session = Session(server)
    try:
        run_old(session)
        run_tea_oos(session, "tea-acs3", None)
        run_tea_oos(session, "tea-rpcv1", "v2")
        run_tea_ess_2022(session)
        run_tea_ess_2014(session)
    finally:
        server.shutdown()
    check_captures(session.captures)

    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, "sdk-captures.json"), session.captures)
    write_json(os.path.join(out, "signature-vectors.json"), vectors)
    flavours = {}
    for c in session.captures:
        flavours[c["flavour"]] = flavours.get(c["flavour"], 0) + 1
    print(f"{len(session.captures)} captures ({', '.join(f'{f} {n}' for f, n in flavours.items())}) "
          f"and {len(vectors)} signature vectors written to {os.path.normpath(out)}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except Failure as error:
        print(f"FAIL: {error}", file=sys.stderr)
        sys.exit(1)
