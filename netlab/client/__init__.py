"""The API client: every component and the CLI talk to the API server through it."""

from netlab.client.http import APIError, Client, SyncClient, object_path, resource_path

__all__ = ["APIError", "Client", "SyncClient", "lab_client", "object_path", "resource_path"]


def lab_client(lab: str, timeout: float = 30.0) -> Client:
    """A client for a lab's API server over its unix socket (root only, no token)."""
    from netlab.paths import socket_path

    return Client(unix_socket=str(socket_path(lab)), timeout=timeout)
