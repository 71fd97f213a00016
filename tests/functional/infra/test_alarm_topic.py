"""The alarms notify the operator's SNS topic when the stack is given one.

moto's CloudFormation builds no CloudWatch alarms, so the alarms' actions are
checked in the template (and by cfn-lint in test_templates); moto checks that a
stack takes the parameter, with and without a topic.
"""

from __future__ import annotations

import json

import boto3
import pytest

from infra.deploy import alarm_topic_parameter
from infra.resources import ALARM_TOPIC, template
from tests.functional.moto_cloudformation import buildable_on_moto


def test_every_alarm_notifies_the_topic_only_when_one_is_given() -> None:
    body = template("dev")
    condition = body["Conditions"]["HasAlarmTopic"]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": ALARM_TOPIC}, ""]}]}
    assert body["Parameters"][ALARM_TOPIC]["Default"] == ""
    alarms = [r for r in body["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert len(alarms) == 4
    when_given = {"Fn::If": ["HasAlarmTopic", [{"Ref": ALARM_TOPIC}], {"Ref": "AWS::NoValue"}]}
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"] == when_given
        assert alarm["Properties"]["OKActions"] == when_given


@pytest.mark.parametrize("topic", [None, "arn:aws:sns:us-east-1:123456789012:ops-pager"])
def test_the_stack_takes_the_parameter(moto_endpoint: str, topic: str | None) -> None:
    cloudformation = boto3.client(
        "cloudformation", endpoint_url=moto_endpoint, region_name="us-east-1"
    )
    name = f"tickwork-alarms{1 if topic else 0}-infra"
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(buildable_on_moto(template(name.split("-")[1]))),
        Parameters=alarm_topic_parameter(topic, previous=set()),
    )
    [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    given = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
    assert given.get(ALARM_TOPIC, "") == (topic or "")
    cloudformation.delete_stack(StackName=name)


def test_a_deploy_without_the_setting_keeps_the_stacks_topic() -> None:
    assert alarm_topic_parameter(None, {ALARM_TOPIC}) == [
        {"ParameterKey": ALARM_TOPIC, "UsePreviousValue": True}
    ]
    # A stack made before the parameter existed has no previous value to keep.
    assert alarm_topic_parameter(None, set()) == []
    assert alarm_topic_parameter(" arn:aws:sns:eu-west-1:1:t ", {ALARM_TOPIC}) == [
        {"ParameterKey": ALARM_TOPIC, "ParameterValue": "arn:aws:sns:eu-west-1:1:t"}
    ]
