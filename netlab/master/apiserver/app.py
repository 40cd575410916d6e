"""The API server's aiohttp application: ``make_app(store, config)``.

Routing is one catch-all route: a request is either a non-resource path
(version, discovery, health, OpenAPI; ``discovery.py``) or a resource path that
``request.parse_path`` turns into a RequestInfo for ``handlers.py``, the way
Kubernetes' RequestInfoFactory does. Two middlewares wrap every request:

* errors: an ``APIError`` becomes its ``Status`` response; anything else is
  logged and answered 500, so no input can take the server down;
* auth: who the request is from (``authn.py``: the unix socket and the lab's admin
  token are ``system:masters``; a service-account JWT is that ServiceAccount; no token
  reaches only the public health and version endpoints; 401 otherwise), whom it may
  impersonate, and whether RBAC lets that user do it (``authz.py``; 403 otherwise).

Startup rebuilds the Service allocators from the store, creates the initial
namespaces and the ``default/kubernetes`` Service (``bootstrap.py``) and
resumes unfinished deletions. Shutdown ends every watch stream and background
task, so that the runner's cleanup returns promptly. The process entry point
(``__main__``) owns the store, the sockets and the runner.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, Callable, Optional

from aiohttp import web

from netlab.api import errors, resources
from netlab.api.objects import loads
from netlab.master.apiserver import (
    authn,
    authz,
    bootstrap,
    discovery,
    metricsapi,
    proxy,
    render,
    satokens,
)
from netlab.master.apiserver.allocators import ServiceAllocator
from netlab.master.apiserver.config import Config
from netlab.master.apiserver.crds import CRDManager
from netlab.master.apiserver.deletion import Background, Deleter
from netlab.master.apiserver.handlers import Context, handle
from netlab.master.apiserver.request import parse_path, query_bool
from netlab.master.apiserver.storage import Registry
from netlab.master.apiserver.watch import WatchHub
from netlab.master.store import Store, StoreClosedError, StoreError

log = logging.getLogger(__name__)

CONTEXT: web.AppKey[Context] = web.AppKey("netlab.apiserver.context", Context)
READY: web.AppKey[list] = web.AppKey("netlab.apiserver.ready", list)
# The client session of pods/proxy and services/proxy, shared by every proxied request.
PROXY: web.AppKey[proxy.Forwarder] = web.AppKey("netlab.apiserver.proxy", proxy.Forwarder)
KNOWN_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.APIError as err:
        return render.error_response(err)
    except web.HTTPRequestEntityTooLarge:
        return render.error_response(errors.request_entity_too_large(
            request.app[CONTEXT].config.max_body))
    except web.HTTPException as exc:
        reason = exc.reason.replace(" ", "") if exc.reason else "Unknown"
        return render.error_response(errors.APIError(exc.status, reason, exc.text or reason))
    except StoreClosedError:
        return render.error_response(errors.service_unavailable("the storage is closed"))
    except StoreError as err:
        # The store could not answer (etcd without a quorum, say). kube-apiserver hands
        # such an error, not a metav1.Status, to ErrorToAPIStatus: 500 with no reason
        # (StatusReasonUnknown) and the error's own words, which kubectl prints as
        # "Error from server: etcdserver: request timed out". So does netlab.
        log.warning("%s %s failed: %s", request.method, request.path, err)
        return render.error_response(errors.APIError(500, "", str(err)))
    except (ConnectionError, RuntimeError) as err:
        if request.transport is None or request.transport.is_closing():
            raise  # the client is gone; there is nobody to answer
        log.exception("%s %s failed", request.method, request.path)
        return render.error_response(errors.internal_error(str(err)))
    except Exception as err:
        log.exception("%s %s failed", request.method, request.path)
        return render.error_response(errors.internal_error(f"{type(err).__name__}: {err}"))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    user = await authn.authenticate(request, ctx.store, ctx.config.tokens, ctx.signer)
    if user is not authn.ANONYMOUS:  # anonymous reaches the public paths only
        user = await authn.impersonate(request, ctx.store, user)
        await authz.authorize(ctx.store, user, authz.request_attributes(
            request.method, request.path, request.query))
    request[authn.USER_KEY] = user
    return await handler(request)


async def dispatch(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    if request.method not in KNOWN_METHODS:
        raise errors.method_not_allowed()
    server_address = (f"{ctx.config.advertise_address}:{ctx.config.advertise_port}"
                      if ctx.config.advertise_address else None)
    # Served beside the resource API: metrics.k8s.io (which also adds its group to /apis)
    # and the proxy subresources, whose paths run past RequestInfo's three segments.
    # (A StreamResponse is an empty mapping, hence falsy: compare with None.)
    served: Optional[web.StreamResponse] = await metricsapi.serve(
        request, ctx.registry, resources.api_group_list)
    if served is None:
        served = await proxy.serve(request, ctx.store, request.app[PROXY])
    if served is not None:
        return served
    response = discovery.non_resource(request, ctx.config.git_version,
                                      bool(request.app[READY]), server_address)
    if response is not None:
        return response
    info = parse_path(request.method, request.path, query_bool(request.query, "watch"))
    return await handle(request, ctx, info)


async def _startup(app: web.Application) -> None:
    ctx = app[CONTEXT]
    services = await ctx.store.alist(resources.store_prefix("services"))
    ctx.registry.allocator.rebuild([loads(kv.value) for kv in services.items])
    await bootstrap.ensure_initial_objects(ctx.registry, ctx.config)
    await ctx.crds.load()  # custom resources first: resuming deletions may concern them
    await ctx.deleter.resume()
    app[READY].append(True)


async def _shutdown(app: web.Application) -> None:
    app[READY].clear()
    ctx = app[CONTEXT]
    ctx.watches.close()
    await ctx.background.close()
    ctx.crds.close()


def make_context(store: Store, config: Config) -> Context:
    allocator = ServiceAllocator(config.service_subnet, config.node_port_range)
    registry = Registry(store, allocator)
    background = Background()
    deleter = Deleter(registry, background, builtin_gc=config.builtin_gc,
                      builtin_namespace_deleter=config.builtin_namespace_deleter)
    watches = WatchHub()
    crds = CRDManager(registry, deleter, background, watches)
    signer = satokens.TokenSigner(config.service_account_key or satokens.generate_key_pem(),
                                  config.service_account_issuer, config.api_audiences)
    return Context(store=store, config=config, registry=registry, deleter=deleter,
                   background=background, watches=watches, crds=crds, signer=signer)


def make_app(store: Store, config: Config, **app_options: Any) -> web.Application:
    """The API server application over ``store``. Run it with an aiohttp runner on
    the listeners of your choice; close the store after the runner's cleanup."""
    app = web.Application(client_max_size=config.max_body,
                          middlewares=[error_middleware, auth_middleware], **app_options)
    app[CONTEXT] = make_context(store, config)
    app[READY] = []
    app.router.add_route("*", "/{tail:.*}", dispatch)
    app.on_startup.append(_startup)
    app[PROXY] = proxy.Forwarder()
    app.on_shutdown.append(_shutdown)
    app.on_cleanup.append(lambda app: app[PROXY].close())
    return app
