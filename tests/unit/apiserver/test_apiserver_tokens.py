"""TokenRequest, TokenReview, service-account authentication and RBAC enforcement, over HTTP
in process (netlab/master/apiserver: tokenrequest.py, authn.py, authz.py)."""

from __future__ import annotations

from typing import Any

from apiserver_kit import Client, pod

ISSUER = "https://kubernetes.default.svc.cluster.local"
SA = "/api/v1/namespaces/default/serviceaccounts"
PODS = "/api/v1/namespaces/default/pods"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ROBOT = "system:serviceaccount:default:robot"


async def _token(c: Client, name: str = "robot", **spec: Any) -> str:
    out = await c.ok("POST", f"{SA}/{name}/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
    return out["status"]["token"]


async def _robot(c: Client) -> dict:
    return await c.ok("POST", SA, {"metadata": {"name": "robot"}})


async def _review(c: Client, token: str, **spec: Any) -> dict:
    out = await c.ok("POST", REVIEWS, {"spec": {"token": token, **spec}})
    return out["status"]


async def test_token_request_answers_a_token_request(api, memory_store):
    async with api(memory_store) as c:
        robot = await _robot(c)
        status, out = await c.post(f"{SA}/robot/token", {"spec": {}})
        assert status == 201
        assert out["kind"] == "TokenRequest" and out["apiVersion"] == "authentication.k8s.io/v1"
        assert out["metadata"]["name"] == "robot" and out["metadata"]["namespace"] == "default"
        assert out["spec"] == {"audiences": [ISSUER], "expirationSeconds": 3600,
                               "boundObjectRef": None}
        assert out["status"]["expirationTimestamp"].endswith("Z")
        review = await _review(c, out["status"]["token"])
        assert review["authenticated"] is True and review["audiences"] == [ISSUER]
        user = review["user"]
        assert user["username"] == ROBOT and user["uid"] == robot["metadata"]["uid"]
        assert user["groups"] == ["system:serviceaccounts", "system:serviceaccounts:default",
                                  "system:authenticated"]
        assert user["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
        # The subresource is in discovery, which kubectl create token looks for.
        core = await c.ok("GET", "/api/v1")
        token_sub = next(r for r in core["resources"] if r["name"] == "serviceaccounts/token")
        assert (token_sub["group"], token_sub["version"], token_sub["kind"], token_sub["verbs"]) \
            == ("authentication.k8s.io", "v1", "TokenRequest", ["create"])


async def test_token_request_errors(api, memory_store):
    async with api(memory_store) as c:
        status, err = await c.post(f"{SA}/robot/token", {"spec": {}})
        assert status == 404 and err["message"] == 'serviceaccounts "robot" not found'
        await _robot(c)
        status, err = await c.post(f"{SA}/robot/token", {"spec": {"expirationSeconds": 599}})
        assert status == 422 and err["reason"] == "Invalid"
        assert err["message"] == ('TokenRequest.authentication.k8s.io "" is invalid: '
                                  "spec.expirationSeconds: Invalid value: 599: may not specify "
                                  "a duration less than 10 minutes")
        status, err = await c.post(f"{SA}/robot/token", {"metadata": {"name": "other"}})
        assert status == 422 and "must match the service account name" in err["message"]
        status, err = await c.post(f"{SA}/robot/token", {"spec": {"boundObjectRef": {
            "kind": "ConfigMap", "apiVersion": "v1", "name": "x"}}})
        assert status == 400 and err["message"] == (
            'cannot bind token for serviceaccount "robot" to object of type /v1, Kind=ConfigMap')
        status, err = await c.post(f"{SA}/robot/token", {"spec": {"boundObjectRef": {
            "kind": "Pod", "apiVersion": "v1", "name": "nope"}}})
        assert status == 404 and err["message"] == 'pods "nope" not found'
        # A pod that runs as another service account: 400, as upstream's TokenREST.
        await c.ok("POST", PODS, pod("other"))
        status, err = await c.post(f"{SA}/robot/token", {"spec": {"boundObjectRef": {
            "kind": "Pod", "apiVersion": "v1", "name": "other"}}})
        assert status == 400 and err["reason"] == "BadRequest" and err["message"] == (
            'cannot bind token for serviceaccount "robot" to pod running with different '
            "serviceaccount name.")
        # Names that cannot be keys are not found (404), not a server error.
        for bad in ("", "a/b", ".."):
            for kind in ("Pod", "Secret", "Node"):
                status, err = await c.post(f"{SA}/robot/token", {"spec": {"boundObjectRef": {
                    "kind": kind, "apiVersion": "v1", "name": bad}}})
                assert status == 404 and err["reason"] == "NotFound", (kind, bad, err)
        await c.ok("POST", PODS, pod("web", serviceAccountName="robot"))
        status, err = await c.post(f"{SA}/robot/token", {"spec": {"boundObjectRef": {
            "kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "not-its-uid"}}})
        assert status == 409 and err["message"].startswith(
            'Operation cannot be fulfilled on Pod "web": the UID in the bound object reference '
            "(not-its-uid) does not match the UID in record.")


async def test_a_service_account_is_authorized_by_rbac(api, memory_store):
    async with api(memory_store) as c:
        await _robot(c)
        token = await _token(c)
        status, err = await c.get(PODS, token=token)
        assert status == 403 and err["reason"] == "Forbidden"
        assert err["message"] == ('pods is forbidden: User "system:serviceaccount:default:robot" '
                                  'cannot list resource "pods" in API group "" in the namespace '
                                  '"default"')
        assert err["details"] == {"kind": "pods"}
        status, err = await c.get(f"{PODS}/web", token=token)
        assert status == 403 and err["message"].startswith('pods "web" is forbidden: User')
        assert err["details"] == {"name": "web", "kind": "pods"}
        status, err = await c.get("/apis/apps/v1/deployments", token=token)
        assert err["message"] == ('deployments.apps is forbidden: User "system:serviceaccount:'
                                  'default:robot" cannot list resource "deployments" in API '
                                  'group "apps" at the cluster scope')
        # What system:authenticated holds: discovery, version, health, self reviews.
        for path in ("/api", "/api/v1", "/apis", "/apis/apps/v1", "/version", "/healthz",
                     "/openapi/v2"):
            status, _ = await c.get(path, token=token)
            assert status == 200, path
        status, err = await c.get("/metrics", token=token)
        assert status == 403 and err["message"] == (
            'forbidden: User "system:serviceaccount:default:robot" cannot get path "/metrics"')
        who = await c.ok("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                         {"kind": "SelfSubjectReview"}, token=token)
        assert who["status"]["userInfo"]["username"] == ROBOT
        # A RoleBinding of view lets it list pods, in that namespace only.
        await c.ok("POST", f"{RBAC}/namespaces/default/rolebindings", {
            "metadata": {"name": "robot-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "default"}]})
        status, out = await c.get(PODS, token=token)
        assert status == 200 and out["kind"] == "PodList"
        status, _ = await c.get("/api/v1/namespaces/kube-system/pods", token=token)
        assert status == 403
        status, _ = await c.post(PODS, pod("x"), token=token)
        assert status == 403
        status, _ = await c.get(PODS, token=token, watch="true", timeoutSeconds=1)
        assert status == 200


async def test_can_i_as_the_service_account_agrees_with_its_token(api, memory_store):
    async with api(memory_store) as c:
        await _robot(c)
        token = await _token(c)
        await c.ok("POST", f"{RBAC}/clusterrolebindings", {
            "metadata": {"name": "all-sas-read-nodes"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "view"},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts:default"}]})
        ssar = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        for verb, resource, want in (("list", "pods", 200), ("create", "pods", 403),
                                     ("list", "secrets", 403)):
            review = await c.ok("POST", ssar, {"spec": {"resourceAttributes": {
                "verb": verb, "resource": resource, "namespace": "default"}}},
                headers={"Impersonate-User": ROBOT})
            allowed = review["status"]["allowed"]
            path = f"/api/v1/namespaces/default/{resource}"
            status, _ = await (c.get(path, token=token) if verb == "list"
                               else c.post(path, pod("y"), token=token))
            assert allowed == (status != 403) and (status == want or status == 201), \
                (verb, resource, status, allowed)
        # Impersonating as the admin acts as that user for real requests too.
        status, err = await c.get("/api/v1/namespaces/default/secrets",
                                  headers={"Impersonate-User": ROBOT})
        assert status == 403 and ROBOT in err["message"]
        # The service account may not impersonate anyone.
        status, err = await c.get(PODS, token=token, headers={"Impersonate-User": "jane"})
        assert status == 403 and err["message"] == (
            'users "jane" is forbidden: User "system:serviceaccount:default:robot" cannot '
            'impersonate resource "users" in API group "" at the cluster scope')


async def test_invalidated_tokens_are_401_and_reviews_say_why(api, memory_store):
    async with api(memory_store) as c:
        await _robot(c)
        await c.ok("POST", PODS, pod("web", serviceAccountName="robot"))
        web = await c.ok("GET", f"{PODS}/web")
        bound = await _token(c, boundObjectRef={"kind": "Pod", "apiVersion": "v1",
                                                 "name": "web",
                                                 "uid": web["metadata"]["uid"]})
        review = await _review(c, bound)
        assert review["user"]["extra"]["authentication.kubernetes.io/pod-name"] == ["web"]
        plain = await _token(c)
        vault = await _token(c, audiences=["vault"])
        # Wrong audience: not for this API server, but a review for "vault" accepts it.
        status, err = await c.get("/api", token=vault)
        assert status == 401 and err["message"] == "Unauthorized"
        assert (await _review(c, vault))["error"] == (
            f'token audiences ["vault"] is invalid for the target audiences ["{ISSUER}"]')
        assert (await _review(c, vault, audiences=["vault"]))["audiences"] == ["vault"]
        # The bound pod deleted (at once): its token is invalidated, the others not.
        await c.ok("DELETE", f"{PODS}/web", gracePeriodSeconds=0)
        status, _ = await c.get("/api", token=bound)
        assert status == 401
        assert (await _review(c, bound)) == {
            "user": {}, "error": "service account token has been invalidated"}
        assert (await c.get("/api", token=plain))[0] == 200
        # The ServiceAccount deleted, then re-created with a new uid: still invalid.
        await c.ok("DELETE", f"{SA}/robot")
        assert (await c.get("/api", token=plain))[0] == 401
        await _robot(c)
        assert (await c.get("/api", token=plain))[0] == 401
        assert (await _review(c, plain))["error"] == "service account token has been invalidated"
        # Tampered, and not a token at all.
        head, body, sig = plain.split(".")
        tampered = f"{head}.{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{sig}"
        assert (await c.get("/api", token=tampered))[0] == 401
        assert (await _review(c, "garbage"))["error"] == "invalid bearer token"
        status, err = await c.post(REVIEWS, {"spec": {}})
        assert status == 422 and "spec.token: Required value" in err["message"]


def test_request_attributes_as_request_info_factory():
    from netlab.master.apiserver.authz import request_attributes

    def attrs(method: str, path: str, **query: str) -> tuple:
        a = request_attributes(method, path, query)
        return (a.verb, a.namespace, a.group, a.resource, a.subresource, a.name) \
            if a.resource_request else (a.verb, a.path)

    assert attrs("GET", "/api/v1/namespaces/ns/pods") == ("list", "ns", "", "pods", "", "")
    assert attrs("GET", "/api/v1/pods", watch="true") == ("watch", "", "", "pods", "", "")
    assert attrs("GET", "/api/v1/watch/namespaces/ns/pods/p") == (
        "watch", "ns", "", "pods", "", "p")
    assert attrs("GET", "/api/v1/namespaces/ns/pods", watch="1",
                 fieldSelector="metadata.name=p") == ("watch", "ns", "", "pods", "", "p")
    assert attrs("DELETE", "/apis/apps/v1/namespaces/ns/deployments") == (
        "deletecollection", "ns", "apps", "deployments", "", "")
    assert attrs("POST", "/api/v1/namespaces/ns/serviceaccounts/sa/token") == (
        "create", "ns", "", "serviceaccounts", "token", "sa")
    assert attrs("PUT", "/api/v1/namespaces/ns/status") == (
        "update", "ns", "", "namespaces", "status", "ns")
    assert attrs("GET", "/api/v1/namespaces/ns") == ("get", "ns", "", "namespaces", "", "ns")
    assert attrs("GET", "/apis/apps/v1") == ("get", "/apis/apps/v1")
    assert attrs("POST", "/metrics") == ("post", "/metrics")


async def test_a_pod_bound_token_names_the_pods_node(api, memory_store):
    import base64
    import json

    async with api(memory_store) as c:
        await _robot(c)
        node = await c.ok("POST", "/api/v1/nodes", {"metadata": {"name": "worker1"}})
        web = await c.ok("POST", PODS, pod("web", nodeName="worker1",
                                               serviceAccountName="robot"))
        token = await _token(c, boundObjectRef={"kind": "Pod", "apiVersion": "v1",
                                                 "name": "web"})
        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        assert claims["kubernetes.io"]["pod"] == {"name": "web", "uid": web["metadata"]["uid"]}
        assert claims["kubernetes.io"]["node"] == {"name": "worker1",
                                                   "uid": node["metadata"]["uid"]}
        extra = (await _review(c, token))["user"]["extra"]
        assert extra["authentication.kubernetes.io/node-name"] == ["worker1"]
        assert extra["authentication.kubernetes.io/pod-uid"] == [web["metadata"]["uid"]]


async def test_a_node_bound_token_dies_with_its_node(api, memory_store):
    async with api(memory_store) as c:
        await _robot(c)
        node = await c.ok("POST", "/api/v1/nodes", {"metadata": {"name": "worker1"}})
        token = await _token(c, boundObjectRef={"kind": "Node", "apiVersion": "v1",
                                                 "name": "worker1"})
        review = await _review(c, token)
        assert review["user"]["extra"]["authentication.kubernetes.io/node-uid"] == [
            node["metadata"]["uid"]]
        assert (await c.get("/api", token=token))[0] == 200
        await c.ok("DELETE", "/api/v1/nodes/worker1")
        assert (await c.get("/api", token=token))[0] == 401
        assert (await _review(c, token))["error"] == "service account token has been invalidated"


async def test_token_requests_and_reviews_go_through_the_request_plumbing(api, memory_store):
    """fieldValidation warnings and strictness, ?pretty, and the body's apiVersion/kind
    checks are the same as for any create (handlers.read_object, check_type,
    object_response)."""
    auth = {"Authorization": "Bearer test-token"}
    async with api(memory_store) as c:
        await _robot(c)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600, "audiencez": ["x"]}}
        async with c.raw.post(f"{SA}/robot/token", json=body, params={"pretty": "true"},
                              headers=auth) as resp:
            assert resp.status == 201
            assert resp.headers.getall("Warning") == ['299 - "unknown field \\"spec.audiencez\\""']
            text = await resp.text()
        assert text.startswith("{\n") and '"token"' in text
        status, err = await c.post(f"{SA}/robot/token", body, fieldValidation="Strict")
        assert status == 400 and err["message"] == (
            'TokenRequest in version "v1" cannot be handled as a TokenRequest: strict '
            'decoding error: unknown field "spec.audiencez"')
        status, err = await c.post(f"{SA}/robot/token", {"apiVersion": "v1", "spec": {}})
        assert status == 400 and err["message"] == (
            "the API version in the data (v1) does not match the expected API version "
            "(authentication.k8s.io/v1)")
        token = await _token(c)
        async with c.raw.post(REVIEWS, json={"spec": {"token": token, "tokn": 1}},
                              params={"pretty": "true"}, headers=auth) as resp:
            assert resp.status == 201
            assert resp.headers.getall("Warning") == ['299 - "unknown field \\"spec.tokn\\""']
            text = await resp.text()
        assert text.startswith("{\n") and '"authenticated": true' in text
