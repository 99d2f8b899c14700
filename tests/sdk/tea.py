"""The tea (darabonba) SDKs as the scenario's adapter: alibabacloud_oos20190601 for OOS
2019-06-01 and alibabacloud_ess20220222 for ESS 2022-02-22 (`InstanceIds.N`, `Processes.N`,
`ScalingGroupIds.N`, plain-array responses). Each client signs with ACS3-HMAC-SHA256 (the
default) or, with `"v2"`, RPC v1 HMAC-SHA1 (docs/wire.md).

Every response body is checked to be there (a wrongly typed nested value makes the tea SDK
return `body=None` silently) and to have the types its model declares; the scenario then reads
`body.to_map()`, the values as the SDK parsed them.
"""

from alibabacloud_ess20220222 import models as ess
from alibabacloud_ess20220222.client import Client as EssClient
from alibabacloud_oos20190601 import models as oos
from alibabacloud_oos20190601.client import Client as OosClient
from alibabacloud_tea_openapi import utils_models as open_api
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from darabonba.runtime import RuntimeOptions

import common
from common import check


def config_for(config, secret, signature):
    cfg = open_api.Config(access_key_id=config.access_key_id, access_key_secret=secret, endpoint=config.host,
                          protocol="http", region_id="cn-hangzhou", connect_timeout=5000, read_timeout=30000)
    if signature == "v2":
        cfg.signature_algorithm = "v2"
    return cfg


def body_of(response, what):
    check(response is not None and response.status_code == 200, f"{what}: HTTP 200")
    common.check_model(response.body, what)
    body = response.body.to_map()
    check(isinstance(body.get("RequestId"), str) and body["RequestId"], f"{what}: a RequestId", body)
    return body


class TeaApi:
    bad_signature_code = "SignatureDoesNotMatch"

    def __init__(self, config, secret, oos_signature, ess_signature):
        self.oos = OosClient(config_for(config, secret, oos_signature))
        self.ess = EssClient(config_for(config, secret, ess_signature))

    def error(self, call):
        try:
            call()
        except (ClientException, ServerException) as error:
            check(isinstance(error.request_id, str) and error.request_id, "errors carry a RequestId", str(error))
            return error.code, error.status_code
        raise common.Mismatch("the call succeeded; an error was expected")

    # -------------------------------------------------------------- ESS 2022-02-22

    def describe_groups(self, ids):
        body = body_of(self.ess.describe_scaling_groups(
            ess.DescribeScalingGroupsRequest(region_id="cn-hangzhou", scaling_group_ids=ids, page_size=50)),
            "DescribeScalingGroups")
        check(isinstance(body["ScalingGroups"], list), "2022-02-22: ScalingGroups is a plain list", body)
        for group in body["ScalingGroups"]:
            check(isinstance(group.get("SuspendedProcesses", []), list), "SuspendedProcesses is a list", group)
            group.setdefault("SuspendedProcesses", [])
        return body["ScalingGroups"]

    def describe_configurations(self, group_id):
        body = body_of(self.ess.describe_scaling_configurations(
            ess.DescribeScalingConfigurationsRequest(region_id="cn-hangzhou", scaling_group_id=group_id,
                                                     page_size=50)), "DescribeScalingConfigurations")
        return body["ScalingConfigurations"]

    def describe_instances(self, group_id, ids=None):
        body = body_of(self.ess.describe_scaling_instances(
            ess.DescribeScalingInstancesRequest(region_id="cn-hangzhou", scaling_group_id=group_id, instance_ids=ids,
                                                page_size=50)), "DescribeScalingInstances")
        check(isinstance(body["TotalSpotCount"], int), "TotalSpotCount is an integer", body)
        instances = body["ScalingInstances"]
        # ImageId is rollscale's addition to DescribeScalingInstances (the model has no such
        # field, so the typed body drops it): read it from the raw body of the generic call.
        query = {"RegionId": "cn-hangzhou", "ScalingGroupId": group_id, "PageSize": "50"}
        query.update({f"InstanceIds.{n}": i for n, i in enumerate(ids or [], start=1)})
        raw = self.raw("DescribeScalingInstances", query)
        images = {i["InstanceId"]: i["ImageId"] for i in raw["ScalingInstances"]}
        for instance in instances:
            instance["ImageId"] = images.get(instance["InstanceId"])
        return instances

    def suspend_processes(self, group_id, processes):
        body_of(self.ess.suspend_processes(
            ess.SuspendProcessesRequest(region_id="cn-hangzhou", scaling_group_id=group_id, processes=processes)),
            "SuspendProcesses")

    def resume_processes(self, group_id, processes):
        body_of(self.ess.resume_processes(
            ess.ResumeProcessesRequest(region_id="cn-hangzhou", scaling_group_id=group_id, processes=processes)),
            "ResumeProcesses")

    def enter_standby(self, group_id, ids):
        # EnterStandbyRequest of 2022-02-22 has no region_id (docs/wire.md).
        body = body_of(self.ess.enter_standby(ess.EnterStandbyRequest(scaling_group_id=group_id, instance_ids=ids)),
                       "EnterStandby")
        return body.get("ScalingActivityId")

    def exit_standby(self, group_id, ids):
        body = body_of(self.ess.exit_standby(
            ess.ExitStandbyRequest(region_id="cn-hangzhou", scaling_group_id=group_id, instance_ids=ids)),
            "ExitStandby")
        return body.get("ScalingActivityId")

    def set_protection(self, group_id, ids, protected):
        body_of(self.ess.set_instances_protection(
            ess.SetInstancesProtectionRequest(scaling_group_id=group_id, instance_ids=ids,
                                              protected_from_scale_in=protected)), "SetInstancesProtection")

    def describe_activities(self, group_id):
        body = body_of(self.ess.describe_scaling_activities(
            ess.DescribeScalingActivitiesRequest(region_id="cn-hangzhou", scaling_group_id=group_id, page_size=50)),
            "DescribeScalingActivities")
        return body["ScalingActivities"]

    def modify_group(self, group_id, max_size):
        body_of(self.ess.modify_scaling_group(
            ess.ModifyScalingGroupRequest(scaling_group_id=group_id, max_size=max_size)), "ModifyScalingGroup")

    def create_group(self, name, client_token):
        body = body_of(self.ess.create_scaling_group(
            ess.CreateScalingGroupRequest(region_id="cn-hangzhou", scaling_group_name=name, min_size=0, max_size=2,
                                          client_token=client_token)), "CreateScalingGroup")
        return body["ScalingGroupId"]

    def create_configuration(self, group_id, image_id, client_token):
        body = body_of(self.ess.create_scaling_configuration(
            ess.CreateScalingConfigurationRequest(scaling_group_id=group_id, image_id=image_id,
                                                  instance_type="ecs.g6.large", client_token=client_token)),
            "CreateScalingConfiguration")
        return body["ScalingConfigurationId"]

    def raw(self, action, query):
        """An ESS 2022-02-22 action through the SDK's generic call_api: the body as a dict."""
        params = open_api.Params(action=action, version="2022-02-22", protocol="HTTP", pathname="/",
                                 method="POST", auth_type="AK", style="RPC", req_body_type="formData",
                                 body_type="json")
        response = self.ess.call_api(params, open_api.OpenApiRequest(query=query), RuntimeOptions())
        check(response.get("statusCode") == 200 and isinstance(response.get("body"), dict), action, str(response))
        return response["body"]

    def inject_fault(self, instance_id):
        # rollscale's own action (simulated fleet only).
        self.raw("InjectFault", {"InstanceId": instance_id, "Times": "1"})

    # -------------------------------------------------------------- OOS 2019-06-01

    def start_execution(self, template, parameters, client_token=None):
        body = body_of(self.oos.start_execution(
            oos.StartExecutionRequest(region_id="cn-hangzhou", template_name=template, parameters=parameters,
                                      mode="Automatic", client_token=client_token)), "StartExecution")
        return body["Execution"]

    def list_executions(self, execution_id=None, parent_execution_id=None, template_name=None, max_results=None):
        return body_of(self.oos.list_executions(
            oos.ListExecutionsRequest(region_id="cn-hangzhou", execution_id=execution_id,
                                      parent_execution_id=parent_execution_id, template_name=template_name,
                                      max_results=max_results)), "ListExecutions")

    def list_task_executions(self, execution_id):
        body = body_of(self.oos.list_task_executions(
            oos.ListTaskExecutionsRequest(region_id="cn-hangzhou", execution_id=execution_id, max_results=100)),
            "ListTaskExecutions")
        return body["TaskExecutions"]

    def notify(self, execution_id, notify_type, task_execution_id=None, loop_item=None):
        body_of(self.oos.notify_execution(
            oos.NotifyExecutionRequest(region_id="cn-hangzhou", execution_id=execution_id, notify_type=notify_type,
                                       task_execution_id=task_execution_id, loop_item=loop_item)),
            "NotifyExecution")

    def cancel(self, execution_id):
        body_of(self.oos.cancel_execution(oos.CancelExecutionRequest(region_id="cn-hangzhou",
                                                                     execution_id=execution_id)),
                "CancelExecution")


def health_checks(api, config):
    """HealthCheckTypes through the typed ESS 2022-02-22 models: a group made with two types
    (`HealthCheckTypes.N`), changed with HealthCheckType (which wins over HealthCheckTypes), a
    bad combination refused; DescribeScalingGroups' model reads them back. Then the demo
    group's instances as the health checker observed them (rollscale's fields, from the raw
    body: the typed model ignores them, and still parses)."""
    common.step("CreateScalingGroup with HealthCheckTypes, ModifyScalingGroup with HealthCheckType")
    body = body_of(api.ess.create_scaling_group(ess.CreateScalingGroupRequest(
        region_id="cn-hangzhou", scaling_group_name="sdk-health-" + common.token()[:8], min_size=0, max_size=1,
        health_check_types=["ECS", "LOAD_BALANCER"])), "CreateScalingGroup")
    group_id = body["ScalingGroupId"]

    def described():
        response = api.ess.describe_scaling_groups(
            ess.DescribeScalingGroupsRequest(region_id="cn-hangzhou", scaling_group_ids=[group_id]))
        common.check_model(response.body, "DescribeScalingGroups")
        check(len(response.body.scaling_groups) == 1, "DescribeScalingGroups by id", response.body.to_map())
        return response.body.scaling_groups[0]

    group = described()
    check(group.health_check_types == ["ECS", "LOAD_BALANCER"] and group.health_check_type == "ECS",
          "the typed model reads HealthCheckTypes and HealthCheckType (the first)", group.to_map())
    body_of(api.ess.modify_scaling_group(ess.ModifyScalingGroupRequest(
        scaling_group_id=group_id, health_check_type="LOAD_BALANCER", health_check_types=["ECS"])),
        "ModifyScalingGroup")
    group = described()
    check(group.health_check_types == ["LOAD_BALANCER"] and group.health_check_type == "LOAD_BALANCER",
          "HealthCheckType wins over HealthCheckTypes", group.to_map())
    code, status = api.error(lambda: api.ess.modify_scaling_group(ess.ModifyScalingGroupRequest(
        scaling_group_id=group_id, health_check_types=["NONE", "ECS"])))
    check((code, status) == ("InvalidParameter.HealthCheckType", 400), "NONE with another type is refused",
          code, status)
    check(described().health_check_types == ["LOAD_BALANCER"], "the refusal changed nothing")

    common.step("DescribeScalingInstances: what the health checker observed")

    def observed():
        items = api.raw("DescribeScalingInstances",
                        {"ScalingGroupId": config.group_id, "PageSize": "50"})["ScalingInstances"]
        return items if items and all(i.get("LastObservedTime") for i in items) else None

    for instance in common.wait_for("the health checker to look at every demo instance", observed):
        check(instance["HealthStatus"] in ("Healthy", "Unhealthy") and isinstance(instance["Running"], bool)
              and isinstance(instance["ObservedImageId"], str) and instance["ObservedImageId"]
              and isinstance(instance["HealthProblem"], str) and isinstance(instance["Drifts"], list),
              "the observation's fields", instance)
    api.describe_instances(config.group_id)  # the typed model still parses them


def run(config, oos_signature, ess_signature, pause):
    api = TeaApi(config, config.access_key_secret, oos_signature, ess_signature)
    bad = TeaApi(config, "not-the-secret", oos_signature, ess_signature)
    common.errors(api, bad, config)
    common.ess_operations(api, config)
    common.idempotent_creates(api, config)
    common.rolling_update(api, config, pause)
