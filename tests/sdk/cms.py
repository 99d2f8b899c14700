"""CloudMonitor's official Python SDKs set up an alert rule against a running rollscale:
aliyun-python-sdk-cms 7.0.33 (RPC v1) makes the rule, alibabacloud_cms20190101 4.0.10 (ACS3)
adds its webhook, reads the rule back through its typed models, disables and deletes it. In
between, a rolling update whose script fails raises Critical events, and the webhook — a small
HTTP server of this script's on loopback — receives each instance's failure.
See common.py for the configuration.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from alibabacloud_cms20190101 import models as cms
from alibabacloud_cms20190101.client import Client as CmsClient
from aliyunsdkcms.request.v20190101.DeleteEventRulesRequest import DeleteEventRulesRequest
from aliyunsdkcms.request.v20190101.PutEventRuleRequest import PutEventRuleRequest
from aliyunsdkcore.client import AcsClient

import common
import tea
from common import check, step

RULE = "sdk-critical"


class Receiver(BaseHTTPRequestHandler):
    got = []

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        Receiver.got.append((self.path, self.headers.get("X-Rollscale-Delivery"), body))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def old_call(client, host, request, **params):
    request.set_endpoint(host)
    request.set_protocol_type("http")
    for name, value in params.items():
        getattr(request, "set_" + name)(value)
    body = json.loads(client.do_action_with_exception(request))
    check(body.get("Success") is True and body.get("Code") == "200", f"{type(request).__name__} succeeds", body)
    return body


def run(config):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/hooks/critical?token=t"
    old = AcsClient(config.access_key_id, config.access_key_secret, "cn-hangzhou", auto_retry=False, timeout=30)
    client = CmsClient(tea.config_for(config, config.access_key_secret, "acs3"))

    step("PutEventRule (aliyun-python-sdk-cms): Critical InstanceFailed events that say 'failed'")
    put = old_call(old, config.host, PutEventRuleRequest(), RuleName=RULE, State="ENABLED", EventPatterns=[{
        "Product": "ess", "LevelList": ["CRITICAL"], "EventTypeList": ["InstanceFailed"],
        "KeywordFilter": {"Keywords": ["failed"], "Relation": "and"},
    }])
    check(put.get("Data") == f"acs:cms:*:*:rule/{RULE}", "PutEventRule names the rule", put)

    step("PutEventRuleTargets (alibabacloud_cms20190101): a webhook")
    webhook = cms.PutEventRuleTargetsRequestWebhookParameters(id="pager", protocol="http", method="POST", url=hook)
    body = tea.body_of(client.put_event_rule_targets(
        cms.PutEventRuleTargetsRequest(rule_name=RULE, webhook_parameters=[webhook])), "PutEventRuleTargets")
    check(body.get("Success") is True, "PutEventRuleTargets succeeds", body)

    step("DescribeEventRuleList, DescribeEventRuleAttribute, DescribeEventRuleTargetList: typed models")
    listed = tea.body_of(client.describe_event_rule_list(cms.DescribeEventRuleListRequest(name_prefix="sdk-")),
                         "DescribeEventRuleList")
    rules = listed["EventRules"]["EventRule"]
    check(listed.get("Total") == 1 and len(rules) == 1 and rules[0]["Name"] == RULE, "the rule is listed", listed)
    check(rules[0]["State"] == "ENABLED", "the rule is enabled", rules[0])
    pattern = rules[0]["EventPattern"]["EventPattern"][0]
    check(pattern["LevelList"]["LevelList"] == ["CRITICAL"], "the levels", pattern)
    check(pattern["EventTypeList"]["EventTypeList"] == ["InstanceFailed"], "the kinds", pattern)
    check(pattern["KeywordFilter"] == {"Relation": "and", "Keywords": {"Keywords": ["failed"]}},
          "the keywords, as the old SDK gave them", pattern)
    attribute = tea.body_of(client.describe_event_rule_attribute(
        cms.DescribeEventRuleAttributeRequest(rule_name=RULE)), "DescribeEventRuleAttribute")
    check(attribute["Result"]["Name"] == RULE and attribute["Result"]["EventPattern"]["Product"] == "ess",
          "the rule's attribute", attribute)
    targets = tea.body_of(client.describe_event_rule_target_list(
        cms.DescribeEventRuleTargetListRequest(rule_name=RULE)), "DescribeEventRuleTargetList")
    check(targets["WebhookParameters"]["WebhookParameter"] == [
        {"Id": "pager", "Protocol": "http", "Method": "POST", "Url": hook}], "the webhook", targets)

    step("a rolling update whose script fails: two instances of the first batch")
    api = tea.TeaApi(config, config.access_key_secret, "acs3", "acs3")
    execution = api.start_execution(common.SCRIPT_TEMPLATE, json.dumps({
        "invokeType": "invoke", "scalingGroupId": config.group_id, "invokeScript": "echo failing\nexit 3",
        "batchNumber": 5, "batchPauseOption": "Automatic",
    }))
    execution_id = execution["ExecutionId"]
    deadline = time.time() + common.WAIT_SECONDS
    while len(Receiver.got) < 2 and time.time() < deadline:
        time.sleep(0.2)
    check(len(Receiver.got) == 2, "the webhook got both instances' failures", Receiver.got)
    for path, delivery, event in Receiver.got:
        check(path == "/hooks/critical?token=t", "the webhook's own path and query", path)
        check(delivery == event.get("deliveryId") and delivery.startswith(f"{RULE}/pager/"),
              "the delivery id, as a header and in the body", delivery, event)
        check(event.get("kind") == "InstanceFailed" and event.get("level") == "CRITICAL", "a Critical failure", event)
        check(event.get("executionId") == execution_id and event.get("scalingGroupId") == config.group_id,
              "the event names the execution and the group", event)
    api.cancel(execution_id)

    step("DisableEventRules (alibabacloud_cms20190101), DeleteEventRules (aliyun-python-sdk-cms)")
    tea.body_of(client.disable_event_rules(cms.DisableEventRulesRequest(rule_names=[RULE])), "DisableEventRules")
    listed = tea.body_of(client.describe_event_rule_list(cms.DescribeEventRuleListRequest(name_prefix="sdk-")),
                         "DescribeEventRuleList")
    check(listed["EventRules"]["EventRule"][0]["State"] == "DISABLED", "the rule is disabled", listed)
    # (The old SDK names this setter `set_RuleNamess`.)
    old_call(old, config.host, DeleteEventRulesRequest(), RuleNamess=[RULE])
    listed = tea.body_of(client.describe_event_rule_list(cms.DescribeEventRuleListRequest(name_prefix="sdk-")),
                         "DescribeEventRuleList")
    check(listed.get("Total") == 0, "the rule is gone", listed)
    server.shutdown()


if __name__ == "__main__":
    common.main(run)
