"""Access reviews, bootstrap RBAC objects and APIServices over HTTP, in process."""

from __future__ import annotations

AUTHZ = "/apis/authorization.k8s.io/v1"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
APIREG = "/apis/apiregistration.k8s.io/v1/apiservices"


def ssar(**attrs) -> dict:
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}


async def test_self_subject_access_review_for_the_lab_admin(api, memory_store):
    async with api(memory_store) as c:
        status, out = await c.post(f"{AUTHZ}/selfsubjectaccessreviews",
                                   ssar(verb="create", resource="pods", namespace="default"))
        assert status == 201 and out["status"] == {"allowed": True}
        assert out["spec"]["resourceAttributes"]["resource"] == "pods"
        # Never stored: there is nothing to get or list.
        status, _ = await c.get(f"{AUTHZ}/selfsubjectaccessreviews")
        assert status == 405


async def test_reviews_answer_for_an_impersonated_user_from_rbac(api, memory_store):
    async with api(memory_store) as c:
        await c.ok("POST", f"{RBAC}/namespaces/default/roles", {
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]})
        await c.ok("POST", f"{RBAC}/namespaces/default/rolebindings", {
            "metadata": {"name": "read"}, "roleRef": {"kind": "Role", "name": "reader"},
            "subjects": [{"kind": "User", "name": "jane"}]})
        jane = {"Impersonate-User": "jane"}
        out = await c.ok("POST", f"{AUTHZ}/selfsubjectaccessreviews",
                         ssar(verb="list", resource="pods", namespace="default"), headers=jane)
        assert out["status"]["allowed"] is True
        assert out["status"]["reason"].startswith('RBAC: allowed by RoleBinding "read/default"')
        out = await c.ok("POST", f"{AUTHZ}/selfsubjectaccessreviews",
                         ssar(verb="delete", resource="pods", namespace="default"),
                         headers=jane)
        assert out["status"] == {"allowed": False}
        sar = {"spec": {"user": "jane", "resourceAttributes": {
            "verb": "list", "resource": "pods", "namespace": "default"}}}
        out = await c.ok("POST", f"{AUTHZ}/subjectaccessreviews", sar)
        assert out["status"]["allowed"] is True
        out = await c.ok("POST", f"{AUTHZ}/namespaces/default/localsubjectaccessreviews", sar)
        assert out["status"]["allowed"] is True
        rules = await c.ok("POST", f"{AUTHZ}/selfsubjectrulesreviews",
                           {"spec": {"namespace": "default"}}, headers=jane)
        assert {"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]} in \
            rules["status"]["resourceRules"]


async def test_review_errors_are_422_with_the_field(api, memory_store):
    async with api(memory_store) as c:
        status, err = await c.post(f"{AUTHZ}/selfsubjectaccessreviews",
                                   {"spec": {}})
        assert status == 422
        assert err["details"]["causes"][0]["field"] == "spec.resourceAttributes"
        status, err = await c.post(f"{AUTHZ}/subjectaccessreviews", {"spec": {
            "nonResourceAttributes": {"path": "/healthz", "verb": "get"}}})
        assert status == 422 and "at least one of user or group must be specified" in \
            err["message"]
        status, err = await c.post(f"{AUTHZ}/namespaces/a/localsubjectaccessreviews", {
            "spec": {"user": "u", "resourceAttributes": {"namespace": "b", "verb": "get"}}})
        assert status == 422 and err["details"]["causes"][0]["field"] == \
            "spec.resourceAttributes.namespace"
        status, err = await c.post(f"{AUTHZ}/selfsubjectaccessreviews",
                                   {"spec": {"resourceAttributes": {}, "bogus": 1}},
                                   fieldValidation="Strict")
        assert status == 400 and 'unknown field "spec.bogus"' in err["message"]


async def test_bootstrap_roles_and_builtin_apiservices(api, memory_store):
    async with api(memory_store) as c:
        names = [r["metadata"]["name"] for r in (await c.ok("GET", f"{RBAC}/clusterroles"))[
            "items"]]
        assert {"cluster-admin", "admin", "edit", "view", "system:discovery"} <= set(names)
        crb = await c.ok("GET", f"{RBAC}/clusterrolebindings/cluster-admin")
        assert crb["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                    "name": "system:masters"}]
        listed = {a["metadata"]["name"]: a for a in (await c.ok("GET", APIREG))["items"]}
        assert {"v1.", "v1.apps", "v2.autoscaling", "v1.autoscaling", "v1.batch",
                "v1.rbac.authorization.k8s.io", "v1.networking.k8s.io"} <= set(listed)
        apps = listed["v1.apps"]
        assert apps["spec"] == {"group": "apps", "version": "v1",
                                "groupPriorityMinimum": 17800, "versionPriority": 15}
        assert apps["status"]["conditions"][0]["type"] == "Available"
        assert apps["status"]["conditions"][0]["status"] == "True"


async def test_user_apiservice_is_stored_and_not_available(api, memory_store):
    async with api(memory_store) as c:
        body = {"metadata": {"name": "v1.example.com"}, "spec": {
            "group": "example.com", "version": "v1", "groupPriorityMinimum": 1000,
            "versionPriority": 15, "service": {"name": "ext", "namespace": "default"}}}
        created = await c.ok("POST", APIREG, body)
        assert created["spec"]["service"]["port"] == 443
        assert created["status"]["conditions"][0]["status"] == "False"
        status, err = await c.post(APIREG, {**body, "metadata": {"name": "v2.example.com"}})
        assert status == 422 and err["details"]["causes"][0]["field"] == "metadata.name"
        await c.ok("DELETE", f"{APIREG}/v1.example.com")
        status, _ = await c.get(f"{APIREG}/v1.example.com")
        assert status == 404


async def test_network_policy_defaults_and_generation(api, memory_store):
    async with api(memory_store) as c:
        path = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"
        created = await c.ok("POST", path, {"metadata": {"name": "np"}, "spec": {
            "podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}})
        assert created["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert created["spec"]["egress"][0]["ports"][0]["protocol"] == "TCP"
        assert created["metadata"]["generation"] == 1
        ing = await c.ok("POST", "/apis/networking.k8s.io/v1/namespaces/default/ingresses", {
            "metadata": {"name": "web"}, "spec": {"defaultBackend": {"service": {
                "name": "web", "port": {"number": 80}}}}})
        assert ing["status"] == {"loadBalancer": {}}


async def test_self_subject_review_names_the_caller(api, memory_store):
    async with api(memory_store) as c:
        path = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
        out = await c.ok("POST", path, {"apiVersion": "authentication.k8s.io/v1",
                                        "kind": "SelfSubjectReview"})
        assert out["status"]["userInfo"] == {
            "username": "netlab-admin", "groups": ["system:masters", "system:authenticated"]}
        out = await c.ok("POST", path, {}, headers={"Impersonate-User": "jane",
                                                    "Impersonate-Group": "devs"})
        assert out["status"]["userInfo"] == {"username": "jane",
                                             "groups": ["devs", "system:authenticated"]}


async def test_rbac_is_listed_again_only_when_the_store_moved(api, memory_store, monkeypatch):
    """A non-master request with nothing written since the last one reads RBAC from the
    kept snapshot (no store list); a write (a new binding) is seen at once."""
    listed: list[str] = []
    real = memory_store.alist

    async def counting(prefix: str, *args, **kwargs):
        listed.append(prefix)
        return await real(prefix, *args, **kwargs)

    monkeypatch.setattr(memory_store, "alist", counting)
    rbac_lists = lambda: [p for p in listed if "role" in p]  # noqa: E731
    jane = {"Impersonate-User": "jane"}
    async with api(memory_store) as c:
        status, _ = await c.get("/api/v1/namespaces/default/configmaps", headers=jane)
        assert status == 403
        await c.ok("POST", f"{RBAC}/namespaces/default/roles", {
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]})
        await c.ok("POST", f"{RBAC}/namespaces/default/rolebindings", {
            "metadata": {"name": "read"}, "roleRef": {"kind": "Role", "name": "reader"},
            "subjects": [{"kind": "User", "name": "jane"}]})
        assert (await c.get("/api/v1/namespaces/default/configmaps", headers=jane))[0] == 200
        before = len(rbac_lists())
        for _ in range(5):
            assert (await c.get("/api/v1/namespaces/default/configmaps",
                                headers=jane))[0] == 200
        assert len(rbac_lists()) == before
        await c.ok("DELETE", f"{RBAC}/namespaces/default/rolebindings/read")
        assert (await c.get("/api/v1/namespaces/default/configmaps", headers=jane))[0] == 403
        assert len(rbac_lists()) > before
