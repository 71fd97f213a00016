"""The part of a template that moto's CloudFormation builds.

moto 5.x creates the infra template's tables, queues, bucket and log groups,
and skips, with a warning, the resource types it does not implement: the
console's CloudFront distribution, origin access control and response headers
policy, the bucket policy, the alarms. An output that refers to a skipped
resource makes moto fail the stack, so `buildable_on_moto` drops those outputs
(and nothing else). moto itself says which types it builds, so a moto that
learns CloudFront makes these tests build it too. What moto cannot build is
checked on the template itself and by cfn-lint (`test_templates.py`).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from moto.cloudformation.parsing import resource_class_from_type

Json = dict[str, Any]
_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9]+)[.}]")


def skipped_by_moto(body: Json) -> set[str]:
    """Logical ids of the resources moto's CloudFormation does not create."""
    return {
        logical
        for logical, resource in body["Resources"].items()
        if resource_class_from_type(resource["Type"]) is None
    }


def referenced(value: Any) -> set[str]:
    """Logical ids a template fragment refers to (`Ref`, `Fn::GetAtt`, `Fn::Sub`)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt" and isinstance(inner, list):
                found.add(inner[0])
            elif key == "Fn::Sub" and isinstance(inner, str):
                found |= set(_SUB_NAME.findall(inner))
            else:
                found |= referenced(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= referenced(inner)
    return found


def buildable_on_moto(body: Json) -> Json:
    """`body` without the outputs that refer to resources moto skips."""
    skipped = skipped_by_moto(body)
    built = copy.deepcopy(body)
    built["Outputs"] = {
        key: output
        for key, output in body.get("Outputs", {}).items()
        if not referenced(output["Value"]) & skipped
    }
    return built
