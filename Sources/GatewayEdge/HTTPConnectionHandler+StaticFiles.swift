import GatewayAuth
import GatewayCore
import GatewayMetrics
import GatewayTLS
import GatewayWebSocket
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// A `static` route's files: read off the event loop, sent with an ETag for revalidation.
extension HTTPConnectionHandler {
    /// Sends a file of a `static` route (read off the event loop), with an ETag for revalidation.
    func serve(
        _ found: StaticFiles.Found,
        ifNoneMatch: String?,
        context: ChannelHandlerContext,
        keepAlive: Bool,
        headOnly: Bool
    ) {
        let etag = "\"\(String(found.modified, radix: 16))-\(String(found.size, radix: 16))\""
        var headers: HTTPHeaders = [
            "ETag": etag,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Content-Type": StaticFiles.contentType(of: found.path),
        ]
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        if let hsts = dependencies.hsts { headers.add(name: "Strict-Transport-Security", value: hsts) }
        func finish(_ status: HTTPResponseStatus, body: ByteBuffer?) {
            headers.replaceOrAdd(name: "Content-Length", value: String(status == .notModified ? 0 : found.size))
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                promise: nil
            )
            if let body, !headOnly { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if keepAlive {
                context.triggerUserOutboundEvent(HTTPRequestGuard.Event.responseComplete, promise: nil)
            } else {
                done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            }
        }
        if ifNoneMatch == etag || headOnly {
            return finish(ifNoneMatch == etag ? .notModified : .ok, body: nil)
        }
        if let body = found.body {
            return finish(.ok, body: context.channel.allocator.buffer(bytes: body))
        }
        let fileIO = NonBlockingFileIO(threadPool: .singleton)
        let eventLoop = context.eventLoop
        fileIO.openFile(_deprecatedPath: found.path, eventLoop: eventLoop).flatMap { handle, region in
            fileIO.read(
                fileHandle: handle,
                byteCount: region.readableBytes,
                allocator: ByteBufferAllocator(),
                eventLoop: eventLoop
            )
            .always { _ in try? handle.close() }
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let body):
                finish(.ok, body: body)
            case .failure:
                self.respond(
                    context: context,
                    .init(status: .notFound, headers: [:], body: "not found\n", keepAlive: keepAlive, headOnly: false)
                )
            }
        }
    }
}
