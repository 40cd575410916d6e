"""OpenAPI schemas of apiextensions.k8s.io/v1 (CustomResourceDefinition), restated from
k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1/types.go.

Imported at the bottom of :mod:`netlab.api.openapi_schemas` so its ``_def``/``_kind``
calls register the components. ``JSONSchemaProps`` is recursive and open-ended; it is
published as an object that keeps unknown fields, so strict field validation accepts
any schema and the structural check (:mod:`netlab.api.structural`) judges it instead.
"""

from __future__ import annotations

from netlab.api.openapi_schemas_base import (
                                    AS,
                                    FREE,
                                    I32,
                                    OBJ,
                                    TIME,
                                    A,
                                    B,
                                    M,
                                    R,
                                    S,
                                    _def,
                                    _kind,
                                    obj,
)

_def("apiext.JSONSchemaProps", dict(FREE, description="A JSON-Schema following "
                                    "Specification Draft 4 (http://json-schema.org/)."))
_def("apiext.CustomResourceValidation", obj(openAPIV3Schema=R("apiext.JSONSchemaProps")))
_def("apiext.CustomResourceColumnDefinition", obj(
    ("name", "type", "jsonPath"), description=S, format=S, jsonPath=S, name=S, priority=I32,
    type=S))
_def("apiext.CustomResourceSubresourceScale", obj(
    ("specReplicasPath", "statusReplicasPath"), labelSelectorPath=S, specReplicasPath=S,
    statusReplicasPath=S))
_def("apiext.CustomResourceSubresources", obj(
    scale=R("apiext.CustomResourceSubresourceScale"), status=dict(FREE)))
_def("apiext.SelectableField", obj(("jsonPath",), jsonPath=S))
_def("apiext.CustomResourceDefinitionVersion", obj(
    ("name", "served", "storage"),
    additionalPrinterColumns=A("apiext.CustomResourceColumnDefinition", ltype="atomic"),
    deprecated=B, deprecationWarning=S, name=S, schema=R("apiext.CustomResourceValidation"),
    selectableFields=A("apiext.SelectableField", ltype="atomic"), served=B, storage=B,
    subresources=R("apiext.CustomResourceSubresources")))
_def("apiext.CustomResourceDefinitionNames", obj(
    ("plural", "kind"), categories=AS(ltype="atomic"), kind=S, listKind=S, plural=S,
    shortNames=AS(ltype="atomic"), singular=S))
_def("apiext.ServiceReference", obj(("namespace", "name"), name=S, namespace=S, path=S,
                                    port=I32))
_def("apiext.WebhookClientConfig", obj(caBundle=S, service=R("apiext.ServiceReference"), url=S))
_def("apiext.WebhookConversion", obj(("conversionReviewVersions",),
                                     clientConfig=R("apiext.WebhookClientConfig"),
                                     conversionReviewVersions=AS(ltype="atomic")))
_def("apiext.CustomResourceConversion", obj(("strategy",), strategy=S,
                                            webhook=R("apiext.WebhookConversion")))
_def("apiext.CustomResourceDefinitionSpec", OBJ({
    "conversion": R("apiext.CustomResourceConversion"), "group": S,
    "names": R("apiext.CustomResourceDefinitionNames"), "preserveUnknownFields": B,
    "scope": S, "versions": A("apiext.CustomResourceDefinitionVersion", ltype="atomic")},
    ("group", "names", "scope", "versions")))
_def("apiext.CustomResourceDefinitionCondition", obj(
    ("type", "status"), lastTransitionTime=TIME, message=S, reason=S, status=S, type=S))
_def("apiext.CustomResourceDefinitionStatus", obj(
    acceptedNames=R("apiext.CustomResourceDefinitionNames"),
    conditions=M("apiext.CustomResourceDefinitionCondition", "type"),
    storedVersions=AS(ltype="atomic")))
_kind("apiext.CustomResourceDefinition", "apiextensions.k8s.io", "v1", {
    "spec": R("apiext.CustomResourceDefinitionSpec"),
    "status": R("apiext.CustomResourceDefinitionStatus")}, ("spec",))
