"""The old core SDK (aliyun-python-sdk-core with aliyun-python-sdk-oos and aliyun-python-sdk-ess
2014-08-28, RPC v1 HMAC-SHA1, every parameter in the query) drives a rolling update against a
running rollscale. See common.py for the configuration and the scenario.

This SDK returns the raw bytes of a success (docs/wire.md); the OOS bodies are also read through
the tea OOS models, so their field types are checked as strictly as the tea SDK's are, and the
2014-08-28 ESS bodies are checked for their XML-style wrappers (docs/wire.md).
"""

import json

from aliyunsdkcore import client as core_client
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from aliyunsdkess.request.v20140828 import (
    CreateScalingConfigurationRequest,
    CreateScalingGroupRequest,
    DescribeScalingActivitiesRequest,
    DescribeScalingConfigurationsRequest,
    DescribeScalingGroupsRequest,
    DescribeScalingInstancesRequest,
    EnterStandbyRequest,
    ExitStandbyRequest,
    ModifyScalingGroupRequest,
    ResumeProcessesRequest,
    SetInstancesProtectionRequest,
    SuspendProcessesRequest,
)
from aliyunsdkoos.request.v20190601 import (
    CancelExecutionRequest,
    ListExecutionsRequest,
    ListTaskExecutionsRequest,
    NotifyExecutionRequest,
    StartExecutionRequest,
)
from alibabacloud_ess20220222 import models as ess_models
from alibabacloud_oos20190601 import models as oos_models

import common
from common import check


def unwrap(body, outer, inner):
    """A 2014-08-28 list: `{"Outer": {"Inner": [...]}}`."""
    wrapper = body.get(outer)
    check(isinstance(wrapper, dict) and isinstance(wrapper.get(inner), list),
          f"2014-08-28: {outer} is {{\"{inner}\": [...]}}", body)
    return wrapper[inner]


def typed_items(model_class, items, what):
    """2014-08-28 items through the 2022-02-22 item model, the wrappers left out: the fields
    the two versions share have the same types."""
    for item in items:
        plain = {k: v for k, v in item.items() if not isinstance(v, dict)}
        common.check_model(model_class().from_map(plain), what)
    return items


def typed(model_class, body, what):
    """The raw body read by the tea model of the same action, with its declared types."""
    try:
        model = model_class().from_map(body)
    except Exception as error:  # noqa: BLE001 - from_map raises on a wrongly typed nested value
        raise common.Mismatch(f"{what}: the tea model refuses the body ({error})\n    {json.dumps(body)}")
    common.check_model(model, what)
    return body


class OldApi:
    # The old SDK compares the server's string to sign (after the ':' of the message) with its
    # own, and when they are equal reports the server's SignatureDoesNotMatch as
    # InvalidAccessKeySecret (aliyunsdkcore/client.py). Equal they must be: only the secret is
    # wrong. The raw code the server sent is recorded below and checked to be
    # SignatureDoesNotMatch too.
    bad_signature_code = "InvalidAccessKeySecret"

    def __init__(self, config, secret):
        self.host = config.host
        self.client = AcsClient(config.access_key_id, secret, "cn-hangzhou", auto_retry=False, timeout=30)

    def call(self, request, **params):
        request.set_endpoint(self.host)
        request.set_protocol_type("http")
        for name, value in params.items():
            if value is not None:
                getattr(request, "set_" + name)(value)
        raw = self.client.do_action_with_exception(request)
        body = json.loads(raw)
        check(isinstance(body, dict) and isinstance(body.get("RequestId"), str) and body["RequestId"],
              "a JSON object with a RequestId", raw.decode())
        return body

    def error(self, call):
        try:
            call()
        except ServerException as error:
            check(isinstance(error.get_request_id(), str) and error.get_request_id(), "errors carry a RequestId")
            return error.get_error_code(), error.get_http_status()
        raise common.Mismatch("the call succeeded; an error was expected")

    # -------------------------------------------------------------- ESS 2014-08-28

    def describe_groups(self, ids):
        body = self.call(DescribeScalingGroupsRequest.DescribeScalingGroupsRequest(), ScalingGroupIds=ids,
                         PageSize=50)
        groups = unwrap(body, "ScalingGroups", "ScalingGroup")
        check(isinstance(body["TotalCount"], int) and isinstance(body["PageNumber"], int), "paging ints", body)
        typed_items(ess_models.DescribeScalingGroupsResponseBodyScalingGroups, groups, "DescribeScalingGroups")
        for group in groups:
            group["SuspendedProcesses"] = unwrap(group, "SuspendedProcesses", "SuspendedProcess")
            group["LoadBalancerIds"] = unwrap(group, "LoadBalancerIds", "LoadBalancerId")
        return groups

    def describe_configurations(self, group_id):
        body = self.call(DescribeScalingConfigurationsRequest.DescribeScalingConfigurationsRequest(),
                         ScalingGroupId=group_id, PageSize=50)
        return typed_items(ess_models.DescribeScalingConfigurationsResponseBodyScalingConfigurations,
                           unwrap(body, "ScalingConfigurations", "ScalingConfiguration"),
                           "DescribeScalingConfigurations")

    def describe_instances(self, group_id, ids=None):
        body = self.call(DescribeScalingInstancesRequest.DescribeScalingInstancesRequest(), ScalingGroupId=group_id,
                         InstanceIds=ids, PageSize=50)
        check(isinstance(body["TotalSpotCount"], int), "TotalSpotCount is an integer", body)
        return typed_items(ess_models.DescribeScalingInstancesResponseBodyScalingInstances,
                           unwrap(body, "ScalingInstances", "ScalingInstance"), "DescribeScalingInstances")

    def suspend_processes(self, group_id, processes):
        self.call(SuspendProcessesRequest.SuspendProcessesRequest(), ScalingGroupId=group_id, Processs=processes)

    def resume_processes(self, group_id, processes):
        self.call(ResumeProcessesRequest.ResumeProcessesRequest(), ScalingGroupId=group_id, Processs=processes)

    def enter_standby(self, group_id, ids):
        body = self.call(EnterStandbyRequest.EnterStandbyRequest(), ScalingGroupId=group_id, InstanceIds=ids)
        return body.get("ScalingActivityId")

    def exit_standby(self, group_id, ids):
        body = self.call(ExitStandbyRequest.ExitStandbyRequest(), ScalingGroupId=group_id, InstanceIds=ids)
        return body.get("ScalingActivityId")

    def set_protection(self, group_id, ids, protected):
        self.call(SetInstancesProtectionRequest.SetInstancesProtectionRequest(), ScalingGroupId=group_id,
                  InstanceIds=ids, ProtectedFromScaleIn=protected)

    def describe_activities(self, group_id):
        body = self.call(DescribeScalingActivitiesRequest.DescribeScalingActivitiesRequest(), ScalingGroupId=group_id,
                         PageSize=50)
        return typed_items(ess_models.DescribeScalingActivitiesResponseBodyScalingActivities,
                           unwrap(body, "ScalingActivities", "ScalingActivity"), "DescribeScalingActivities")

    def modify_group(self, group_id, max_size):
        self.call(ModifyScalingGroupRequest.ModifyScalingGroupRequest(), ScalingGroupId=group_id, MaxSize=max_size)

    def create_group(self, name, client_token):
        body = self.call(CreateScalingGroupRequest.CreateScalingGroupRequest(), ScalingGroupName=name, MinSize=0,
                         MaxSize=2, ClientToken=client_token)
        return body["ScalingGroupId"]

    def create_configuration(self, group_id, image_id, client_token):
        body = self.call(CreateScalingConfigurationRequest.CreateScalingConfigurationRequest(),
                         ScalingGroupId=group_id, ImageId=image_id, InstanceType="ecs.g6.large",
                         ClientToken=client_token)
        return body["ScalingConfigurationId"]

    def inject_fault(self, instance_id):
        # rollscale's own action (simulated fleet only), through the SDK's CommonRequest.
        request = CommonRequest(domain=self.host, version="2014-08-28", action_name="InjectFault")
        request.set_method("POST")
        request.set_protocol_type("http")
        request.add_query_param("InstanceId", instance_id)
        request.add_query_param("Times", "1")
        json.loads(self.client.do_action_with_exception(request))

    # -------------------------------------------------------------- OOS 2019-06-01

    def start_execution(self, template, parameters, client_token=None):
        body = self.call(StartExecutionRequest.StartExecutionRequest(), TemplateName=template,
                         Parameters=parameters, Mode="Automatic", ClientToken=client_token)
        typed(oos_models.StartExecutionResponseBody, body, "StartExecution")
        return body["Execution"]

    def list_executions(self, execution_id=None, parent_execution_id=None, template_name=None, max_results=None):
        body = self.call(ListExecutionsRequest.ListExecutionsRequest(), ExecutionId=execution_id,
                         ParentExecutionId=parent_execution_id, TemplateName=template_name, MaxResults=max_results)
        return typed(oos_models.ListExecutionsResponseBody, body, "ListExecutions")

    def list_task_executions(self, execution_id):
        body = self.call(ListTaskExecutionsRequest.ListTaskExecutionsRequest(), ExecutionId=execution_id,
                         MaxResults=100)
        return typed(oos_models.ListTaskExecutionsResponseBody, body, "ListTaskExecutions")["TaskExecutions"]

    def notify(self, execution_id, notify_type, task_execution_id=None, loop_item=None):
        self.call(NotifyExecutionRequest.NotifyExecutionRequest(), ExecutionId=execution_id, NotifyType=notify_type,
                  TaskExecutionId=task_execution_id, LoopItem=loop_item)

    def cancel(self, execution_id):
        self.call(CancelExecutionRequest.CancelExecutionRequest(), ExecutionId=execution_id)


def run(config):
    api = OldApi(config, config.access_key_secret)
    bad = OldApi(config, "not-the-secret")

    # Record what the server itself answered, beneath the SDK's rewrite.
    raw_codes = []
    parse = core_client.AcsClient._parse_error_info_from_response_body  # a staticmethod

    def spy(body):
        code, message = parse(body)
        raw_codes.append((code, message))
        return code, message

    core_client.AcsClient._parse_error_info_from_response_body = staticmethod(spy)
    common.errors(api, bad, config, OldApi.bad_signature_code)
    check(raw_codes[0][0] == "SignatureDoesNotMatch", "the server sent SignatureDoesNotMatch", raw_codes[0])
    check(raw_codes[0][1].split(":")[1].startswith("POST&%2F&"), "with its string to sign after a ':'", raw_codes[0])
    core_client.AcsClient._parse_error_info_from_response_body = staticmethod(parse)

    common.ess_operations(api, config)
    common.idempotent_creates(api, config)
    common.rolling_update(api, config, "EveryBatchPause")


if __name__ == "__main__":
    common.main(run)
