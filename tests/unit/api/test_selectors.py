"""Label and field selectors: what kubectl users type, what the apiserver answers.

Expected strings are Kubernetes' own (k8s.io/apimachinery labels/fields parsers and the
validation messages of Kubernetes 1.27-1.33).
"""

from __future__ import annotations

import pytest

from netlab.api.selectors import (
    DEFAULT_FIELD_SELECTORS,
    FIELD_SELECTORS,
    FieldSelector,
    LabelSelector,
    Requirement,
    SelectorError,
    field_value,
    is_qualified_name,
    is_valid_label_value,
    label_selector_from_object,
    parse_field_selector,
    parse_label_selector,
    selector_from_set,
)

QNAME_RULE = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
              "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
              "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
VALUE_RULE = ("a valid label must be an empty string or consist of alphanumeric characters, "
              "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
              "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
              "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
SUBDOMAIN_RULE = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                  "characters, '-' or '.', and must start and end with an alphanumeric character "
                  "(e.g. 'example.com', regex used for validation is "
                  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
BINARY_OPS = "in, notin, =, ==, !=, gt, lt"


# --- label selector grammar -----------------------------------------------------------------

@pytest.mark.parametrize(("text", "canonical"), [
    ("", ""),
    ("   ", ""),
    ("app=web", "app=web"),
    ("app==web", "app==web"),
    ("app!=web", "app!=web"),
    ("app=", "app="),
    ("partition", "partition"),
    ("!partition", "!partition"),
    ("env in (prod, qa)", "env in (prod,qa)"),
    ("env in (qa,prod)", "env in (prod,qa)"),
    ("env in (prod,prod)", "env in (prod)"),
    ("tier notin (fe)", "tier notin (fe)"),
    ("x in ()", "x in ()"),
    ("x in (,)", "x in ()"),
    ("x in (a,)", "x in (,a)"),
    ("x in (,a)", "x in (,a)"),
    ("x in (a,,b)", "x in (,a,b)"),
    # requirements come back sorted by key
    ("tier=fe,app=web", "app=web,tier=fe"),
    ("env in (prod, qa),tier notin (fe),partition,!canary",
     "!canary,env in (prod,qa),partition,tier notin (fe)"),
    # whitespace anywhere between tokens, including tabs and newlines
    ("  app = web ,\ttier\n!= fe  ", "app=web,tier!=fe"),
    ("env  in  (  a  ,  b  )", "env in (a,b)"),
    # "in" and "notin" are plain identifiers where a key or value is expected
    ("in in (in, notin)", "in in (in,notin)"),
    ("notin=in", "notin=in"),
    ("x in(a)", "x in (a)"),
    # prefixed keys and the full label alphabet
    ("app.kubernetes.io/name=web", "app.kubernetes.io/name=web"),
    ("example.com/My_Key-1.x=Val_ue-2.y", "example.com/My_Key-1.x=Val_ue-2.y"),
    # gt / lt, as the apiserver accepts them
    ("replicas>1", "replicas>1"),
    ("replicas<10", "replicas<10"),
    ("a=1,a!=2", "a=1,a!=2"),
])
def test_label_selector_parses_to_kubernetes_canonical_form(text, canonical):
    selector = parse_label_selector(text)
    assert str(selector) == canonical
    # the canonical form is itself a selector that parses to the same thing
    assert parse_label_selector(str(selector)) == selector


def test_label_selector_structure():
    selector = parse_label_selector("tier notin (fe),!canary,env in (qa,prod),app=web")
    assert selector.requirements == (
        Requirement("app", "=", ("web",)),
        Requirement("canary", "!", ()),
        Requirement("env", "in", ("prod", "qa")),
        Requirement("tier", "notin", ("fe",)),
    )
    assert not selector.empty
    assert parse_label_selector("").empty


WEB = {"app": "web", "env": "prod", "tier": "fe"}


@pytest.mark.parametrize(("text", "labels", "matches"), [
    ("", {}, True),
    ("", WEB, True),
    ("app=web", WEB, True),
    ("app==web", WEB, True),
    ("app=db", WEB, False),
    ("app=web", {}, False),
    ("app=web", None, False),
    ("app!=db", WEB, True),
    ("app!=web", WEB, False),
    ("app!=web", {}, True),  # a missing key is "not equal"
    ("app=", {"app": ""}, True),
    ("app=", {}, False),
    ("env in (prod,qa)", WEB, True),
    ("env in (qa,dev)", WEB, False),
    ("env in (prod)", {}, False),
    ("env notin (qa)", WEB, True),
    ("env notin (prod)", WEB, False),
    ("env notin (prod)", {}, True),  # a missing key is "not in"
    ("x in ()", {"x": ""}, True),
    ("x in ()", {"x": "a"}, False),
    ("tier", WEB, True),
    ("canary", WEB, False),
    ("!canary", WEB, True),
    ("!tier", WEB, False),
    ("app=web,env in (prod),!canary,tier", WEB, True),
    ("app=web,env in (qa)", WEB, False),  # a conjunction: one miss fails it
    ("replicas>1", {"replicas": "2"}, True),
    ("replicas>1", {"replicas": "1"}, False),
    ("replicas<10", {"replicas": "9"}, True),
    ("replicas<10", {"replicas": "10"}, False),
    ("replicas>1", {"replicas": "many"}, False),
    ("replicas>1", {"replicas": "1_0"}, False),  # Go's ParseInt, not Python's int()
    ("replicas>1", {}, False),
])
def test_label_selector_matches(text, labels, matches):
    assert parse_label_selector(text).matches(labels) is matches


@pytest.mark.parametrize(("text", "message"), [
    ("app web", f"unable to parse requirement: found 'web', expected: {BINARY_OPS}"),
    ("app (", f"unable to parse requirement: found '(', expected: {BINARY_OPS}"),
    ("app!", f"unable to parse requirement: found '!', expected: {BINARY_OPS}"),
    ("app=web,", "found '', expected: identifier after ','"),
    ("app=web,,tier", "found ',', expected: identifier after ','"),
    (",app", "found ',', expected: !, identifier, or 'end of string'"),
    ("=web", "found '=', expected: !, identifier, or 'end of string'"),
    ("(a)", "found '(', expected: !, identifier, or 'end of string'"),
    ("app=web tier", "found 'tier', expected: ',' or 'end of string'"),
    ("!app=web", "found '=', expected: ',' or 'end of string'"),
    ("!!app", "unable to parse requirement: found '!', expected: identifier"),
    ("app=(", "unable to parse requirement: found '(', expected: identifier"),
    ("app==!", "unable to parse requirement: found '!', expected: identifier"),
    ("env in prod", "unable to parse requirement: found 'prod' expected: '('"),
    ("env in (prod qa)", "unable to parse requirement: found 'qa', expected: ',' or ')'"),
    ("env in (prod", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("env in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
    ("env in (a,,)", "unable to parse requirement: found ')', expected: ',', or identifier"),
    ("env in (a,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
    # key validation: the parser's nil field path shows as "<nil>"
    ("a/b/c=d", 'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name '
                + QNAME_RULE + " with an optional DNS subdomain prefix and '/' "
                "(e.g. 'example.com/MyName')"),
    ("app/=x", 'unable to parse requirement: <nil>: Invalid value: "app/": '
               "name part must be non-empty; name part " + QNAME_RULE),
    ("/app=x", 'unable to parse requirement: <nil>: Invalid value: "/app": '
               "prefix part must be non-empty"),
    ("Example.com/app=x", 'unable to parse requirement: <nil>: Invalid value: '
                          '"Example.com/app": prefix part ' + SUBDOMAIN_RULE),
    ("-app", 'unable to parse requirement: <nil>: Invalid value: "-app": name part '
             + QNAME_RULE),
    ("a" * 64, f'unable to parse requirement: <nil>: Invalid value: "{"a" * 64}": '
               "name part must be no more than 63 characters"),
    ("!bad_", 'unable to parse requirement: <nil>: Invalid value: "bad_": name part '
              + QNAME_RULE),
    # value validation goes through NewRequirement: path values[i][key]
    ("app=-web", 'unable to parse requirement: values[0][app]: Invalid value: "-web": '
                 + VALUE_RULE),
    ("app=" + "v" * 64, f'unable to parse requirement: values[0][app]: Invalid value: '
                        f'"{"v" * 64}": must be no more than 63 characters'),
    # set values are sorted before validation, and several errors are aggregated
    ("env in (ok, b@d, -x)", 'unable to parse requirement: [values[0][env]: Invalid value: '
                             '"-x": ' + VALUE_RULE + ', values[1][env]: Invalid value: "b@d": '
                             + VALUE_RULE + "]"),
    ("replicas<many", 'unable to parse requirement: values[0]: Invalid value: "many": '
                      "for 'Gt', 'Lt' operators, the value must be an integer"),
])
def test_label_selector_errors_match_the_apiserver(text, message):
    with pytest.raises(SelectorError) as err:
        parse_label_selector(text)
    assert str(err.value) == message


def test_selector_error_is_a_value_error():
    assert issubclass(SelectorError, ValueError)


@pytest.mark.parametrize(("key", "errors"), [
    ("app", []),
    ("a", []),
    ("A1.b-c_d", []),
    ("k8s.io/app", []),
    ("a" * 63, []),
    ("x." * 126 + "x/app", []),  # a 253-character prefix
    ("", ["name part must be non-empty", "name part " + QNAME_RULE]),
    ("a" * 64, ["name part must be no more than 63 characters"]),
    ("x." * 126 + "xy/app", ["prefix part must be no more than 253 characters"]),
    ("app-", ["name part " + QNAME_RULE]),
    ("ünïcode", ["name part " + QNAME_RULE]),
])
def test_label_key_validation(key, errors):
    assert is_qualified_name(key) == errors


@pytest.mark.parametrize(("value", "ok"), [
    ("", True), ("web", True), ("Web_1.2-x", True), ("v" * 63, True),
    ("v" * 64, False), ("-web", False), ("web.", False), ("a b", False), ("a/b", False),
])
def test_label_value_validation(value, ok):
    assert (is_valid_label_value(value) == []) is ok


# --- LabelSelector objects (metav1.LabelSelector) ---------------------------------------------

@pytest.mark.parametrize(("obj", "canonical", "labels", "matches"), [
    ({"matchLabels": {"app": "web"}}, "app=web", WEB, True),
    ({"matchLabels": {"tier": "fe", "app": "web"}}, "app=web,tier=fe", WEB, True),
    ({"matchLabels": {"app": "db"}}, "app=db", WEB, False),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["qa", "prod"]}]},
     "env in (prod,qa)", WEB, True),
    ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]},
     "env notin (prod)", WEB, False),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, "tier", WEB, True),
    ({"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}, "!canary", WEB,
     True),
    ({"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]},
                           {"key": "canary", "operator": "DoesNotExist", "values": []}]},
     "app=web,!canary,env in (prod)", WEB, True),
    # an empty selector selects everything ...
    ({}, "", WEB, True),
    ({"matchLabels": {}, "matchExpressions": []}, "", {}, True),
])
def test_label_selector_from_object(obj, canonical, labels, matches):
    selector = label_selector_from_object(obj)
    # matchLabels and matchExpressions are sorted together by key
    assert str(selector) == canonical
    assert selector.matches(labels) is matches


def test_missing_label_selector_object_selects_nothing():
    # ... but a missing one (a nil pointer in Go) selects nothing
    selector = label_selector_from_object(None)
    assert not selector.matches(WEB)
    assert not selector.matches({})
    assert not selector.empty
    assert selector == LabelSelector.match_nothing()


@pytest.mark.parametrize(("obj", "message"), [
    ({"matchExpressions": [{"key": "env", "operator": "Equals", "values": ["a"]}]},
     '"Equals" is not a valid label selector operator'),
    ({"matchExpressions": [{"key": "env", "operator": "In"}]},
     "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be "
     "empty"),
    ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": []}]},
     "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be "
     "empty"),
    ({"matchExpressions": [{"key": "env", "operator": "Exists", "values": ["a", "b"]}]},
     'values: Invalid value: []string{"a", "b"}: values set must be empty for exists and does '
     "not exist"),
    ({"matchExpressions": [{"key": "bad key", "operator": "Exists"}]},
     'key: Invalid value: "bad key": name part ' + QNAME_RULE),
    ({"matchLabels": {"app": "bad value"}},
     'values[0][app]: Invalid value: "bad value": ' + VALUE_RULE),
    ({"matchExpressions": [{"key": "-k", "operator": "In", "values": ["-v"]}]},
     '[key: Invalid value: "-k": name part ' + QNAME_RULE
     + ', values[0][-k]: Invalid value: "-v": ' + VALUE_RULE + "]"),
    ({"matchLabels": {"replicas": 3}}, None),  # not a string: rejected, whatever the wording
    # Bodies of the wrong shape are the client's error (a 422), never a server crash.
    ({"matchLabels": ["app"]}, "matchLabels must be a map of strings"),
    ({"matchExpressions": "app"}, "matchExpressions must be a list of requirements"),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": 5}]},
     "matchExpressions values must be a list of strings"),
])
def test_label_selector_object_errors(obj, message):
    with pytest.raises(SelectorError) as err:
        label_selector_from_object(obj)
    if message is not None:
        assert str(err.value) == message


@pytest.mark.parametrize(("labels", "canonical", "target", "matches"), [
    ({"app": "web"}, "app=web", WEB, True),
    ({"tier": "fe", "app": "web"}, "app=web,tier=fe", WEB, True),
    ({"app": "web", "env": "qa"}, "app=web,env=qa", WEB, False),
    ({}, "", WEB, True),  # Kubernetes: an empty set selects everything
    (None, "", {}, True),
])
def test_selector_from_set(labels, canonical, target, matches):
    selector = selector_from_set(labels)
    assert str(selector) == canonical
    assert selector.matches(target) is matches


def test_selector_from_set_validates_only_on_request():
    assert selector_from_set({"app": "bad value"}).matches({"app": "bad value"})
    with pytest.raises(SelectorError, match=r'values\[0\]\[app\]: Invalid value: "bad value"'):
        selector_from_set({"app": "bad value"}, validate=True)


@pytest.mark.parametrize(("text", "key", "value"), [
    ("app=web,tier!=fe", "app", "web"),
    ("app==web", "app", "web"),
    ("app in (web)", "app", "web"),
    ("app in (web,db)", "app", None),
    ("app!=web", "app", None),
    ("tier=fe", "app", None),
])
def test_requires_exact_match(text, key, value):
    assert parse_label_selector(text).requires_exact_match(key) == value


# --- field selectors ----------------------------------------------------------------------------

POD_FIELDS = FIELD_SELECTORS["Pod"][0]


@pytest.mark.parametrize(("text", "canonical"), [
    ("", ""),
    ("metadata.name=web", "metadata.name=web"),
    ("metadata.name==web", "metadata.name=web"),  # "==" is stored as "="
    ("metadata.namespace!=kube-system", "metadata.namespace!=kube-system"),
    ("spec.nodeName=", "spec.nodeName="),
    # terms are sorted as raw strings before parsing
    ("status.phase=Running,spec.nodeName=n1", "spec.nodeName=n1,status.phase=Running"),
    ("metadata.name=a,", "metadata.name=a"),  # empty terms are skipped
    # the leftmost operator splits a term; "!=" and "==" win over "=" at the same position
    ("metadata.name=!x", "metadata.name=!x"),
    # escaped commas, equals signs and backslashes in values
    ("metadata.name=a\\,b", "metadata.name=a\\,b"),
    ("metadata.name=a\\=b\\\\c", "metadata.name=a\\=b\\\\c"),
])
def test_field_selector_parses(text, canonical):
    selector = parse_field_selector(text, POD_FIELDS)
    assert str(selector) == canonical
    assert parse_field_selector(str(selector), POD_FIELDS).requirements == selector.requirements


def test_field_selector_unescapes_values():
    selector = parse_field_selector("metadata.name=a\\,b\\=c\\\\d", POD_FIELDS)
    assert selector.requirements[0].value == "a,b=c\\d"
    assert selector.matches({"metadata": {"name": "a,b=c\\d"}})


@pytest.mark.parametrize(("text", "message"), [
    ("foo=bar", "field label not supported: foo"),
    ("metadata.name=a,spec.host2=b", "field label not supported: spec.host2"),
    ("=x", "field label not supported: "),
    (" metadata.name=a", "field label not supported:  metadata.name"),  # no trimming
    ("status.phase", "invalid selector: 'status.phase'; can't understand 'status.phase'"),
    ("metadata.name=a,status.phase",
     "invalid selector: 'metadata.name=a,status.phase'; can't understand 'status.phase'"),
    ("metadata.name=a\\x", "invalid field selector: invalid escape sequence: \\x"),
    ("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
    # Go prints the offending rune with %v: its code point
    ("metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
    ("metadata.name!==b", "invalid field selector: unescaped character in value: 61"),
])
def test_field_selector_errors(text, message):
    with pytest.raises(SelectorError) as err:
        parse_field_selector(text, POD_FIELDS)
    assert str(err.value) == message


@pytest.mark.parametrize(("kind", "text", "message"), [
    ("Pod", "spec.containers=x", "field label not supported: spec.containers"),
    ("Node", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("Namespace", "spec.finalizers=x", "field label not supported: spec.finalizers"),
    ("Service", "spec.ports=x", "field label not supported: spec.ports"),
    ("Event", "message=x", "field label not supported: message"),
    ("Job", "status.active=1", 'field label "status.active" not supported for batchv1.Job'),
    # kinds with Kubernetes' default conversion
    ("Deployment", "spec.replicas=1",
     '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("ReplicaSet", "status.replicas=1",
     '"status.replicas" is not a known field selector: only "metadata.name", '
     '"metadata.namespace"'),
    ("Endpoints", "subsets=x",
     '"subsets" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("HorizontalPodAutoscaler", "spec.minReplicas=1",
     '"spec.minReplicas" is not a known field selector: only "metadata.name", '
     '"metadata.namespace"'),
])
def test_field_selector_per_kind_messages(kind, text, message):
    with pytest.raises(SelectorError) as err:
        parse_field_selector(text, kind=kind)
    assert str(err.value) == message


@pytest.mark.parametrize(("kind", "text"), [
    ("Pod", "spec.nodeName=n1,status.phase=Running,spec.hostNetwork=false"),
    ("Pod", "status.podIP=10.244.1.5,spec.restartPolicy=Always,status.nominatedNodeName="),
    ("Node", "metadata.name=n1,spec.unschedulable=true"),
    ("Namespace", "status.phase=Active"),
    ("Service", "spec.type=ClusterIP,spec.clusterIP=10.96.0.10"),
    ("Event", "involvedObject.kind=Pod,reason=Scheduled,type=Normal,source=default-scheduler"),
    ("Job", "status.successful=1"),
    ("Deployment", "metadata.name=web,metadata.namespace=default"),
])
def test_field_selector_supported_fields_per_kind(kind, text):
    assert len(parse_field_selector(text, kind=kind).requirements) == text.count(",") + 1


def test_default_field_selectors():
    assert sorted(DEFAULT_FIELD_SELECTORS) == ["metadata.name", "metadata.namespace"]


def test_old_clients_spec_host_means_spec_node_name():
    selector = parse_field_selector("spec.host=n1", kind="Pod")
    assert str(selector) == "spec.nodeName=n1"
    assert selector.matches({"spec": {"nodeName": "n1"}})


def test_field_selector_without_allowed_accepts_any_field():
    assert parse_field_selector("spec.whatever=x").matches({"spec": {"whatever": "x"}})


SCHEDULED = {"metadata": {"name": "web-1", "namespace": "default"},
             "spec": {"nodeName": "n1", "restartPolicy": "Always"},
             "status": {"phase": "Running", "podIPs": [{"ip": "10.244.1.5"}]}}
PENDING = {"metadata": {"name": "web-2", "namespace": "default"},
           "spec": {"restartPolicy": "Always", "hostNetwork": True},
           "status": {"phase": "Pending"}}
SYSTEM = {"metadata": {"name": "dns", "namespace": "kube-system"},
          "spec": {"nodeName": "", "nominatedNodeName": "n2"}, "status": {}}


@pytest.mark.parametrize(("text", "expected"), [
    ("", ["web-1", "web-2", "dns"]),
    ("spec.nodeName=n1", ["web-1"]),
    ("spec.nodeName=", ["web-2", "dns"]),  # empty value: field missing or empty
    ("spec.nodeName!=", ["web-1"]),
    ("status.phase=Running", ["web-1"]),
    ("status.phase!=Running", ["web-2", "dns"]),
    ("metadata.namespace!=kube-system", ["web-1", "web-2"]),
    ("metadata.namespace==default,status.phase=Pending", ["web-2"]),
    ("metadata.name=web-1,metadata.name=web-2", []),
    ("spec.hostNetwork=true", ["web-2"]),
    ("spec.hostNetwork=false", ["web-1", "dns"]),  # unset is false, as in Go
    ("status.podIP=10.244.1.5", ["web-1"]),  # from podIPs when podIP is absent
])
def test_field_selector_matches_pods(text, expected):
    selector = parse_field_selector(text, kind="Pod")
    assert [p["metadata"]["name"] for p in (SCHEDULED, PENDING, SYSTEM)
            if selector.matches(p)] == expected


@pytest.mark.parametrize(("kind", "obj", "field", "value"), [
    ("Node", {"spec": {}}, "spec.unschedulable", "false"),
    ("Node", {"spec": {"unschedulable": True}}, "spec.unschedulable", "true"),
    ("Job", {"status": {"succeeded": 3}}, "status.successful", "3"),
    ("Job", {"status": {}}, "status.successful", "0"),
    ("Event", {"source": {"component": "kubelet"}}, "source", "kubelet"),
    ("Event", {"reportingController": "netlab/scheduler"}, "source", "netlab/scheduler"),
    ("Event", {"reportingController": "netlab/scheduler"}, "reportingComponent",
     "netlab/scheduler"),
    ("Pod", {"status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.2"}]}},
     "status.podIP", "10.0.0.1"),
    (None, {"spec": {"replicas": 2}}, "spec.replicas", "2"),
    (None, {"spec": {"paused": False}}, "spec.paused", "false"),
    (None, {"spec": None}, "spec.paused", ""),
])
def test_field_values(kind, obj, field, value):
    assert field_value(obj, field, kind) == value


def test_field_selector_matches_precomputed_fields():
    selector = parse_field_selector("spec.nodeName=n1,status.phase!=Failed", POD_FIELDS)
    assert selector.matches_fields({"spec.nodeName": "n1", "status.phase": "Running"})
    assert not selector.matches_fields({"spec.nodeName": "n1", "status.phase": "Failed"})
    assert not selector.matches_fields({})
    assert selector.requires_exact_match("spec.nodeName") == "n1"
    assert selector.requires_exact_match("status.phase") is None


def test_empty_field_selector():
    assert parse_field_selector("", POD_FIELDS).empty
    assert parse_field_selector(None, POD_FIELDS) == FieldSelector((), None)
