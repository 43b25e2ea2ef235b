"""milvus-lite's gRPC server behind the token check a Milvus server with authentication does.

milvus-lite has no authentication: it answers every client. Milvus with
`common.security.authorizationEnabled` rejects a call whose `authorization` metadata (the
base64 of `user:password` or of the token, as pymilvus sends it) is missing or wrong with gRPC
status UNAUTHENTICATED; this server does the same in front of milvus-lite's own servicer.

    python -m tests.milvus_auth_server DATA_DIR PORT TOKEN
"""

from __future__ import annotations

import base64
import sys
from concurrent import futures

import grpc
from milvus_lite.adapter.grpc.servicer import MilvusServicer
from milvus_lite.db import MilvusLite
from pymilvus.grpc_gen import milvus_pb2_grpc

AUTH_FAILURE = "auth check failure, please check username, password or token are correct"


class TokenCheck(grpc.ServerInterceptor):
    def __init__(self, token: str):
        self.expected = base64.b64encode(token.encode()).decode()

    def intercept_service(self, continuation, handler_call_details):
        metadata = dict(handler_call_details.invocation_metadata or ())
        if metadata.get("authorization") == self.expected:
            return continuation(handler_call_details)

        def deny(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, AUTH_FAILURE)

        return grpc.unary_unary_rpc_method_handler(deny)


def main() -> None:
    data_dir, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    db = MilvusLite(data_dir)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10), interceptors=[TokenCheck(token)])
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(MilvusServicer(db), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"milvus-lite with token check listening on 127.0.0.1:{port}", flush=True)
    try:
        server.wait_for_termination()
    finally:
        db.close()


if __name__ == "__main__":
    main()
