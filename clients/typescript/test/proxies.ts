/**
 * Real network peers between the client and the real server, for what the server alone cannot
 * show: an HTTP/2 proxy that records the request headers each call carries (and can terminate
 * TLS), a TCP proxy that drops the first connections (a server that is briefly unavailable), and
 * a listener that accepts and never answers (a hung server). All on loopback, port 0.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Listening {
  /** `127.0.0.1:port` */
  readonly address: string;
  close(): Promise<void>;
}

function addressOf(server: net.Server): string {
  const bound = server.address() as net.AddressInfo;
  return `127.0.0.1:${bound.port}`;
}

function listen(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
}

export interface RecordingProxy extends Listening {
  /** The request headers of every call, in order. */
  readonly requests: http2.IncomingHttpHeaders[];
}

/** An HTTP/2 proxy in front of `target` that records request headers; TLS when given a key pair. */
export async function startRecordingProxy(target: string, tls?: { key: string; cert: string }): Promise<RecordingProxy> {
  const upstream = http2.connect(`http://${target}`);
  upstream.on("error", () => undefined);
  const requests: http2.IncomingHttpHeaders[] = [];
  const sockets = new Set<net.Socket>();
  const onStream = (downstream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    requests.push(headers);
    const forwarded: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) {
      if (name === ":authority" || name === ":scheme") continue;
      forwarded[name] = value;
    }
    const request = upstream.request(forwarded);
    let trailers: http2.IncomingHttpHeaders = {};
    request.on("response", (responseHeaders) => {
      if (responseHeaders["grpc-status"] !== undefined) {
        downstream.respond(responseHeaders, { endStream: true });
        return;
      }
      downstream.respond(responseHeaders, { waitForTrailers: true });
      downstream.on("wantTrailers", () => downstream.sendTrailers(trailers));
      request.pipe(downstream);
    });
    request.on("trailers", (received) => {
      trailers = received;
    });
    request.on("error", () => downstream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    downstream.on("error", () => request.close(http2.constants.NGHTTP2_CANCEL));
    downstream.pipe(request);
  };
  const server = tls ? http2.createSecureServer({ key: tls.key, cert: tls.cert }) : http2.createServer();
  server.on("stream", onStream);
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await listen(server as unknown as net.Server);
  return {
    address: addressOf(server as unknown as net.Server),
    requests,
    close: () =>
      new Promise((resolve) => {
        upstream.close();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface FlakyProxy extends Listening {
  /** Connections accepted so far, dropped ones included. */
  readonly connections: number;
}

/** A TCP proxy to `target` that drops its first `drops` connections at once. */
export async function startFlakyProxy(target: string, drops: number): Promise<FlakyProxy> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    if (connections <= drops) {
      socket.destroy();
      return;
    }
    const upstream = net.connect(port, host);
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    socket.pipe(upstream).pipe(socket);
    socket.on("error", () => upstream.destroy());
    upstream.on("error", () => socket.destroy());
  });
  await listen(server);
  return {
    address: addressOf(server),
    get connections() {
      return connections;
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A listener that accepts connections and never says a word. */
export async function startSilentListener(): Promise<Listening> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
  });
  await listen(server);
  return {
    address: addressOf(server),
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A self-signed certificate for 127.0.0.1 and localhost, made with the openssl CLI; undefined without it. */
export function selfSignedCertificate(): { key: string; cert: string } | undefined {
  const folder = mkdtempSync(join(tmpdir(), "trellis-ts-tls-"));
  try {
    execFileSync(
      "openssl",
      [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=localhost",
        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-keyout", join(folder, "key.pem"), "-out", join(folder, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    return { key: readFileSync(join(folder, "key.pem"), "utf8"), cert: readFileSync(join(folder, "cert.pem"), "utf8") };
  } catch {
    return undefined;
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}
