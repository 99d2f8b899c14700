"""What the SDK drivers share: configuration, checks, the typed-model checker, and the rolling
update scenario itself, written once against a small adapter per SDK family.

Each driver (old_sdk.py, tea_oos.py, tea_ess.py) wraps its SDK's calls in an `Api` with the
methods the scenario uses; the scenario asserts on what the SDK returned and raises `Mismatch`
with a clear message on the first thing that is not as it should be. `main()` turns that into a
non-zero exit.

Configuration (environment, or `--name value` arguments with the same names in lower case):
  ROLLSCALE_ENDPOINT            http://127.0.0.1:PORT (loopback only)
  ROLLSCALE_ACCESS_KEY_ID, ROLLSCALE_ACCESS_KEY_SECRET
  ROLLSCALE_GROUP_ID, ROLLSCALE_CONFIGURATION_ID   the demo group of `rollscale up` (10 instances)
"""

import json
import os
import sys
import time
import traceback
import typing
import uuid

NEW_IMAGE = "aliyun_2_1903_x64_20G_alibase_20200529.vhd"
OLD_IMAGE = "centos_7_8_x64_20G_alibase_20200717.vhd"
IMAGE_TEMPLATE = "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup"
SCRIPT_TEMPLATE = "ACS-ESS-RollingUpdateByRunCommandInScalingGroup"
ALL_PROCESSES = ["ScaleIn", "ScaleOut", "HealthCheck", "AlarmNotification", "ScheduledAction"]
WAIT_SECONDS = 90


class Mismatch(Exception):
    """The SDK read something other than what rollscale should have answered."""


def check(condition, message, *context):
    if not condition:
        detail = "".join("\n    " + (c if isinstance(c, str) else json.dumps(c, default=str)) for c in context)
        raise Mismatch(message + detail)


def step(text):
    print("--", text, flush=True)


class Config:
    def __init__(self, argv):
        values = {}
        args = list(argv)
        while args:
            name = args.pop(0)
            if not name.startswith("--") or not args:
                raise SystemExit(f"usage: {sys.argv[0]} [--endpoint URL] [--access_key_id ID] ...; got {name}")
            values[name[2:].replace("-", "_")] = args.pop(0)

        def get(name):
            value = values.get(name) or os.environ.get("ROLLSCALE_" + name.upper())
            if not value:
                raise SystemExit(f"missing ROLLSCALE_{name.upper()} (or --{name})")
            return value

        endpoint = get("endpoint")
        check(endpoint.startswith("http://127.0.0.1:"), "the SDK tests run on loopback only", endpoint)
        self.host = endpoint[len("http://"):].rstrip("/")
        self.access_key_id = get("access_key_id")
        self.access_key_secret = get("access_key_secret")
        self.group_id = get("group_id")
        self.configuration_id = get("configuration_id")


def main(run):
    """Runs `run(config)`; exit 0 when every check passed, 1 with the reason otherwise."""
    # The SDKs honour proxy variables and ignore NO_PROXY (docs/wire.md): loopback must go direct.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(name, None)
    config = Config(sys.argv[1:])
    started = time.time()
    try:
        run(config)
    except Mismatch as error:
        print(f"FAIL: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception:  # noqa: BLE001 - any SDK exception is a failure with its traceback
        print("FAIL: unexpected exception", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
    print(f"OK ({time.time() - started:.1f}s)", flush=True)


def token():
    return uuid.uuid4().hex


# ------------------------------------------------------------------ tea models: declared types


def check_model(model, what):
    """Every field the tea SDK parsed has the type its model declares (scalars are never checked
    by the SDK itself, docs/wire.md), recursively. `model` must not be None: a wrongly typed nested
    value makes the tea SDK drop the whole body silently (docs/wire.md)."""
    check(model is not None, f"{what}: the tea SDK gave no body (a nested value had the wrong JSON type)")
    _check_model(model, what)
    return model


def _hints(cls):
    module = sys.modules[cls.__module__]
    return typing.get_type_hints(cls.__init__, globalns=vars(module))


def _check_value(value, hint, path):
    if value is None:
        return
    origin = typing.get_origin(hint)
    if hint is typing.Any:
        return
    if origin in (list, typing.List):
        check(isinstance(value, list), f"{path}: a list was declared", value)
        (inner,) = typing.get_args(hint) or (typing.Any,)
        for index, item in enumerate(value):
            _check_value(item, inner, f"{path}[{index}]")
    elif origin in (dict, typing.Dict):
        check(isinstance(value, dict), f"{path}: an object was declared", value)
    elif hint is bool:
        check(isinstance(value, bool), f"{path}: a boolean was declared", value)
    elif hint is int:
        check(isinstance(value, int) and not isinstance(value, bool), f"{path}: an integer was declared", value)
    elif hint is float:
        check(isinstance(value, (int, float)) and not isinstance(value, bool), f"{path}: a number was declared", value)
    elif hint is str:
        check(isinstance(value, str), f"{path}: a string was declared", value)
    elif isinstance(hint, type) and hasattr(hint, "from_map"):
        check(isinstance(value, hint), f"{path}: a {hint.__name__} was declared", str(value))
        _check_model(value, path)


def _check_model(model, path):
    for name, hint in _hints(type(model)).items():
        if name == "return":
            continue
        _check_value(getattr(model, name, None), hint, f"{path}.{name}")


# ------------------------------------------------------------------ the scenario


def is_instance_id(value):
    return isinstance(value, str) and value.startswith("i-")


def wait_for(what, probe, timeout=WAIT_SECONDS):
    """Polls `probe()` until it returns a true value; returns it."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.05)
    raise Mismatch(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def execution(api, execution_id):
    listed = api.list_executions(execution_id=execution_id)
    check(len(listed["Executions"]) == 1, f"ListExecutions --ExecutionId {execution_id}: one execution", listed)
    found = listed["Executions"][0]
    check(found["ExecutionId"] == execution_id, "ListExecutions returned another execution", found)
    return found


def children(api, execution_id):
    listed = api.list_executions(parent_execution_id=execution_id, max_results=100)
    items = listed["Executions"]
    for child in items:
        check(child["ParentExecutionId"] == execution_id, "a child names its parent", child)
        check(child["IsParent"] is False, "a child is not a parent", child)
        check(isinstance(child["Parameters"], dict), "ListExecutions: Parameters is an object", child)
        check(is_instance_id(child["Parameters"].get("instanceId")), "a child's Parameters.instanceId", child)
    return items


def wait_status(api, execution_id, *statuses, reason=None):
    def probe():
        found = execution(api, execution_id)
        if found["Status"] in statuses and (reason is None or found.get("StatusReason") == reason):
            return found
        return None

    return wait_for(f"{execution_id} to be {'/'.join(statuses)} {reason or ''}".strip(), probe)


def check_execution_shape(item, parameters_as_text):
    for name in ("ExecutionId", "TemplateName", "Status", "StartDate", "CreateDate", "Outputs", "Mode"):
        check(isinstance(item.get(name), str), f"execution {name} is a string", item)
    check(item["ExecutionId"].startswith("exec-"), "execution ids are exec-…", item)
    check(isinstance(item.get("Counters"), dict), "Counters is an object", item)
    check(isinstance(item.get("IsParent"), bool), "IsParent is a boolean", item)
    check(isinstance(item.get("CurrentTasks"), list), "CurrentTasks is a list", item)
    check(isinstance(item.get("Tags"), dict), "Tags is an object", item)
    json.loads(item["Outputs"])
    if parameters_as_text:
        check(isinstance(item.get("Parameters"), str), "StartExecution: Parameters is a JSON text", item)
        return json.loads(item["Parameters"])
    check(isinstance(item.get("Parameters"), dict), "ListExecutions: Parameters is an object", item)
    return item["Parameters"]


def ess_operations(api, config):
    """The ESS operations a rolling update relies on, each checked against what it changed."""
    group_id = config.group_id
    step("DescribeScalingGroups")
    groups = api.describe_groups([group_id])
    check(len(groups) == 1 and groups[0]["ScalingGroupId"] == group_id, "DescribeScalingGroups by id", groups)
    group = groups[0]
    check(group["LifecycleState"] == "Active", "the demo group is Active", group)
    check(group["ActiveScalingConfigurationId"] == config.configuration_id, "its active configuration", group)
    check(group["TotalCapacity"] == 10 and group["MinSize"] <= 10 <= group["MaxSize"], "10 instances", group)
    check(group["SuspendedProcesses"] == [], "no process suspended", group)

    step("DescribeScalingConfigurations")
    configurations = api.describe_configurations(group_id)
    ours = [c for c in configurations if c["ScalingConfigurationId"] == config.configuration_id]
    check(len(ours) == 1 and ours[0]["ImageId"] == OLD_IMAGE, "the demo configuration and image", configurations)

    step("DescribeScalingInstances")
    instances = api.describe_instances(group_id)
    check(len(instances) == 10, "DescribeScalingInstances lists the 10 instances", instances)
    check(all(i["LifecycleState"] == "InService" and i["ImageId"] == OLD_IMAGE for i in instances),
          "all InService on the old image", instances)
    first = instances[0]["InstanceId"]

    step("SuspendProcesses / ResumeProcesses")
    api.suspend_processes(group_id, ["ScaleIn", "ScaleOut"])
    suspended = api.describe_groups([group_id])[0]["SuspendedProcesses"]
    check(sorted(suspended) == ["ScaleIn", "ScaleOut"], "SuspendProcesses shows in the group", suspended)
    api.resume_processes(group_id, ["ScaleIn", "ScaleOut"])
    check(api.describe_groups([group_id])[0]["SuspendedProcesses"] == [], "ResumeProcesses")

    step("EnterStandby / ExitStandby")
    activity = api.enter_standby(group_id, [first])
    check(isinstance(activity, str) and activity.startswith("asa-"), "EnterStandby gives a ScalingActivityId", activity)
    (standby,) = api.describe_instances(group_id, [first])
    check(standby["LifecycleState"] == "Standby" and standby["LoadBalancerWeight"] == 0, "in Standby, weight 0",
          standby)
    check(isinstance(api.exit_standby(group_id, [first]), str), "ExitStandby gives a ScalingActivityId")
    (back,) = api.describe_instances(group_id, [first])
    check(back["LifecycleState"] == "InService" and back["LoadBalancerWeight"] == 100, "back InService, weight 100",
          back)

    step("SetInstancesProtection")
    api.set_protection(group_id, [first], True)
    (protected,) = api.describe_instances(group_id, [first])
    check(protected["LifecycleState"] == "Protected", "Protected", protected)
    api.set_protection(group_id, [first], False)
    check(api.describe_instances(group_id, [first])[0]["LifecycleState"] == "InService", "unprotected")

    step("DescribeScalingActivities")
    activities = api.describe_activities(group_id)
    ids = [a["ScalingActivityId"] for a in activities]
    check(activity in ids, "the EnterStandby activity is listed", ids)

    step("ModifyScalingGroup")
    api.modify_group(group_id, max_size=group["MaxSize"] + 2)
    check(api.describe_groups([group_id])[0]["MaxSize"] == group["MaxSize"] + 2, "ModifyScalingGroup MaxSize")
    api.modify_group(group_id, max_size=group["MaxSize"])
    check(api.describe_groups([group_id])[0]["MaxSize"] == group["MaxSize"], "MaxSize restored")


def idempotent_creates(api, config):
    """CreateScalingGroup and CreateScalingConfiguration with a ClientToken: the same token from
    the same caller gives the same id, and no second resource."""
    step("CreateScalingGroup with a ClientToken, twice")
    name = "sdk-" + token()[:8]
    group_token = token()
    first = api.create_group(name, group_token)
    again = api.create_group(name, group_token)
    check(first.startswith("asg-") and first == again, "the same ClientToken gives the same ScalingGroupId",
          first, again)
    other = api.create_group(name + "-2", token())
    check(other != first, "another ClientToken creates another group", first, other)
    check(len(api.describe_groups([first])) == 1, "the group exists")

    step("CreateScalingConfiguration with a ClientToken, twice")
    configuration_token = token()
    created = api.create_configuration(first, OLD_IMAGE, configuration_token)
    repeated = api.create_configuration(first, OLD_IMAGE, configuration_token)
    check(created.startswith("asc-") and created == repeated,
          "the same ClientToken gives the same ScalingConfigurationId", created, repeated)
    configurations = api.describe_configurations(first)
    check([c["ScalingConfigurationId"] for c in configurations] == [created], "one configuration, not two",
          configurations)

    code, status = api.error(lambda: api.create_group(name + "-3", group_token))
    check((code, status) == ("IdempotentParameterMismatch", 400),
          "a ClientToken reused with other parameters is refused", code, status)


def rolling_update(api, config, pause):
    """A rolling update of the demo group through OOS: 3 batches, a pause, one failed instance
    retried and another skipped, Approve, then Success; then a ClientToken StartExecution,
    cancelled."""
    group_id = config.group_id
    parameters = {
        "invokeType": "invoke",
        "scalingGroupId": group_id,
        "scalingConfigurationId": config.configuration_id,
        "imageId": NEW_IMAGE,
        "sourceImageId": OLD_IMAGE,
        "OOSAssumeRole": "",
        "enterProcess": ALL_PROCESSES,
        "exitProcess": ALL_PROCESSES,
        "batchNumber": 3,
        "batchPauseOption": pause,
    }
    step(f"StartExecution ({pause}, 3 batches)")
    started = api.start_execution(IMAGE_TEMPLATE, json.dumps(parameters))
    sent = check_execution_shape(started, parameters_as_text=True)
    check(sent["scalingGroupId"] == group_id and sent["batchNumber"] == 3 and sent["batchPauseOption"] == pause,
          "StartExecution echoes the parameters", sent)
    check(started["TemplateName"] == IMAGE_TEMPLATE and started["IsParent"] is True, "the parent execution", started)
    execution_id = started["ExecutionId"]

    step("ListExecutions --ExecutionId, --ParentExecutionId")
    listed = execution(api, execution_id)
    check_execution_shape(listed, parameters_as_text=False)
    check(listed["Parameters"]["imageId"] == NEW_IMAGE, "ListExecutions: the parameters as an object", listed)
    kids = children(api, execution_id)
    check(len(kids) == 10, "one child execution per instance", kids)
    by_instance = {k["Parameters"]["instanceId"]: k for k in kids}
    check(len(by_instance) == 10, "ten distinct instances")
    batch_of = {i: k["Parameters"]["batch"] for i, k in by_instance.items()}
    check(sorted(batch_of.values()) == [1] * 4 + [2] * 3 + [3] * 3, "batches of 4, 3 and 3", batch_of)
    second = sorted(i for i, b in batch_of.items() if b == 2)

    # Two instances of the second batch fail their next change.
    step(f"InjectFault on {second[0]} and {second[1]}")
    api.inject_fault(second[0])
    api.inject_fault(second[1])

    step("waits after batch 1 (BatchPaused)")
    paused = wait_status(api, execution_id, "Waiting", reason="BatchPaused")
    check(paused["Counters"]["Success"] == 4, "batch 1 done before the pause", paused)
    groups = api.describe_groups([group_id])
    check(sorted(groups[0]["SuspendedProcesses"]) == sorted(ALL_PROCESSES), "enterProcess suspended", groups)

    step("ListTaskExecutions of the parent and of a child")
    tasks = api.list_task_executions(execution_id)
    check(len(tasks) == 10, "one task execution per instance", tasks)
    for task in tasks:
        check(isinstance(task["Properties"], str) and isinstance(task["Outputs"], str), "JSON texts", task)
        check(isinstance(task["Loop"], dict) and isinstance(task["LoopBatchNumber"], int), "Loop, batch", task)
    done = [t for t in tasks if t["Status"] == "Success"]
    check(len(done) == 4, "4 task executions done", tasks)
    steps = api.list_task_executions(done[0]["ChildExecutionId"])
    check(len(steps) >= 5 and all(s["Status"] == "Success" for s in steps), "a done child's steps", steps)

    step("NotifyExecution Approve")
    api.notify(execution_id, "Approve")

    def two_failed():
        found = [k for k in children(api, execution_id) if k["Status"] == "Failed"]
        return found if len(found) == 2 else None

    failed = wait_for("the two faulty instances to fail", two_failed)
    failed_ids = sorted(k["Parameters"]["instanceId"] for k in failed)
    check(failed_ids == second[:2], "exactly the faulty instances failed", failed_ids, second)
    waiting = wait_status(api, execution_id, "Waiting")
    check(waiting["StatusReason"] == "FailurePaused", "a failure pauses the task", waiting)
    standby = api.describe_instances(group_id, second[:2])
    check(all(i["LifecycleState"] == "Standby" and i["LoadBalancerWeight"] == 0 for i in standby),
          "failed instances wait in Standby with weight 0", standby)

    step("NotifyExecution RetryTask (TaskExecutionId) and SkipTask (LoopItem)")
    retried = by_instance[second[0]]["ExecutionId"]
    api.notify(execution_id, "RetryTask", task_execution_id=retried)
    api.notify(execution_id, "SkipTask", loop_item=second[1])
    if pause == "EveryBatchPause":
        wait_status(api, execution_id, "Waiting", reason="BatchPaused")
        check(execution(api, execution_id)["Counters"]["Success"] == 7, "batch 2 done")
        api.notify(execution_id, "Approve")
    final = wait_status(api, execution_id, "Success", "Failed", "Cancelled")
    check(final["Status"] == "Success", "the rolling update succeeds", final)
    check(final["Counters"]["Success"] == 10 and final["Counters"]["Total"] == 10, "all ten counted", final)
    check(final["EndDate"] != "", "an ended execution has an EndDate", final)

    step("the instances afterwards")
    instances = {i["InstanceId"]: i for i in api.describe_instances(group_id)}
    for instance_id, instance in instances.items():
        check(instance["ImageId"] == NEW_IMAGE or instance_id == second[1], "new image", instance)
        expected = "Standby" if instance_id == second[1] else "InService"
        check(instance["LifecycleState"] == expected, "skipped stays in Standby, the rest InService", instance)
    check(instances[second[0]]["ImageId"] == NEW_IMAGE, "the retried instance has the new image")
    check(api.describe_groups([group_id])[0]["SuspendedProcesses"] == [], "exitProcess resumed")
    configurations = api.describe_configurations(group_id)
    ours = [c for c in configurations if c["ScalingConfigurationId"] == config.configuration_id]
    check(ours[0]["ImageId"] == NEW_IMAGE, "the configuration's image is the new one", ours)
    api.exit_standby(group_id, [second[1]])

    step("StartExecution with a ClientToken, twice: one execution")
    script = {
        "invokeType": "invoke",
        "scalingGroupId": group_id,
        "commandType": "RunShellScript",
        "invokeScript": "echo hello from the SDK test",
        "batchNumber": 2,
        "batchPauseOption": "FirstBatchPause",
    }
    client_token = token()
    one = api.start_execution(SCRIPT_TEMPLATE, json.dumps(script), client_token)
    two = api.start_execution(SCRIPT_TEMPLATE, json.dumps(script), client_token)
    check(one["ExecutionId"] == two["ExecutionId"], "the same ClientToken gives the same ExecutionId", one, two)
    listed = api.list_executions(template_name=SCRIPT_TEMPLATE, max_results=100)["Executions"]
    check([e["ExecutionId"] for e in listed] == [one["ExecutionId"]], "no second execution", listed)
    code, status = api.error(lambda: api.start_execution(SCRIPT_TEMPLATE, json.dumps(script), token()))
    check((code, status) == ("IncorrectScalingGroupStatus", 400),
          "another ClientToken while one runs is refused (one task per group)", code, status)

    step("CancelExecution")
    wait_status(api, one["ExecutionId"], "Waiting", reason="BatchPaused")
    api.cancel(one["ExecutionId"])
    cancelled = wait_status(api, one["ExecutionId"], "Cancelled", "Success", "Failed")
    check(cancelled["Status"] == "Cancelled", "CancelExecution cancels", cancelled)
    again = api.start_execution(SCRIPT_TEMPLATE, json.dumps(script), client_token)
    check(again["ExecutionId"] == one["ExecutionId"], "the token still names the same execution", again)


def errors(api, bad_secret_api, config, bad_signature_code="SignatureDoesNotMatch"):
    step("errors: a bad signature, an unknown group, an unknown execution")
    code, status = bad_secret_api.error(lambda: bad_secret_api.describe_groups([config.group_id]))
    check((code, status) == (bad_signature_code, 400), "a wrong secret", code, status)
    code, status = bad_secret_api.error(lambda: bad_secret_api.list_executions(execution_id="exec-0"))
    check((code, status) == (bad_signature_code, 400), "a wrong secret (OOS)", code, status)
    unknown = "asg-00000000000000000000"
    code, status = api.error(lambda: api.enter_standby(unknown, ["i-00000000000000000000"]))
    check((code, status) == ("InvalidScalingGroupId.NotFound", 404), "an unknown scaling group", code, status)
    code, status = api.error(lambda: api.suspend_processes(unknown, ["ScaleIn"]))
    check((code, status) == ("InvalidScalingGroupId.NotFound", 404), "an unknown scaling group", code, status)
    parameters = {"invokeType": "invoke", "scalingGroupId": unknown, "imageId": NEW_IMAGE}
    code, status = api.error(lambda: api.start_execution(IMAGE_TEMPLATE, json.dumps(parameters)))
    check((code, status) == ("InvalidScalingGroupId.NotFound", 404), "StartExecution on an unknown group", code,
          status)
    code, status = api.error(lambda: api.cancel("exec-00000000000000000000"))
    check((code, status) == ("EntityNotExists.Execution", 404), "an unknown execution", code, status)
