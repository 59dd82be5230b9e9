/*
 * The generator ceiling of `make bench`: the cheapest WebSocket echo over TLS we know how to
 * write, so that a reader sees how many round trips the load generator itself can drive on this
 * machine, and how much of the machine it takes while doing so.
 *
 * It does what the load generator needs and nothing else: TLS (OpenSSL, the certificate of the
 * other setups), the opening handshake, masked client frames echoed unmasked (ping answered,
 * close echoed), one TLS write per batch of reads. No UTF-8 check, no limits beyond its buffers,
 * no timers, no logging: it is a floor for the server's cost, not a server. One thread per CPU,
 * each with its own epoll set and its own listening socket on the port (SO_REUSEPORT), as
 * nginx has one worker process per CPU.
 *
 *   ceiling PORT CERT KEY THREADS        prints "listening" once every thread listens
 *
 * Built by scripts/bench.py with the system compiler: cc -O2 ceiling.c -lssl -lcrypto -lpthread.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* A frame of the benchmark (4 KiB and its header) fits many times over. */
#define BUFFER_BYTES (64 * 1024)
#define GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum phase { TLS_HANDSHAKE, HTTP_REQUEST, OPEN, CLOSING };

struct connection {
    int fd;
    SSL *ssl;
    enum phase phase;
    size_t in_length;
    size_t out_length;
    unsigned char in[BUFFER_BYTES];
    unsigned char out[BUFFER_BYTES];
};

static SSL_CTX *context;
static int port;

static int listening_socket(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) != 0 || listen(fd, 1024) != 0) {
        perror("ceiling: listen");
        exit(1);
    }
    return fd;
}

static void drop(int epoll, struct connection *c) {
    epoll_ctl(epoll, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    SSL_free(c->ssl);
    free(c);
}

/* Writes what is queued as one TLS write. 1: all written; 0: the socket is full (retried, with
 * the same bytes, when it is writable again); -1: the connection is to be dropped. */
static int flush_output(struct connection *c) {
    if (c->out_length == 0) return 1;
    int written = SSL_write(c->ssl, c->out, (int)c->out_length);
    if (written <= 0) {
        int error = SSL_get_error(c->ssl, written);
        return error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ ? 0 : -1;
    }
    c->out_length = 0;
    return c->phase == CLOSING ? -1 : 1;
}

/* Answers the opening handshake once the request's head is in. */
static int answer_request(struct connection *c, size_t *consumed) {
    unsigned char *end = memmem(c->in, c->in_length, "\r\n\r\n", 4);
    if (end == NULL) return c->in_length < BUFFER_BYTES ? 0 : -1;
    *end = 0;
    char *key = strcasestr((char *)c->in, "\r\nSec-WebSocket-Key:");
    if (key == NULL) return -1;
    key += strlen("\r\nSec-WebSocket-Key:");
    while (*key == ' ') key++;
    size_t key_length = strcspn(key, " \r");
    if (key_length == 0 || key_length > 64) return -1;
    unsigned char input[64 + sizeof GUID], digest[SHA_DIGEST_LENGTH];
    memcpy(input, key, key_length);
    memcpy(input + key_length, GUID, strlen(GUID));
    SHA1(input, key_length + strlen(GUID), digest);
    char accept[32];
    EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
    c->out_length += (size_t)snprintf((char *)c->out + c->out_length, BUFFER_BYTES - c->out_length,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    *consumed = (size_t)(end - c->in) + 4;
    c->phase = OPEN;
    return 1;
}

/* Echoes every whole frame in `in`; a partial one stays for the next read. */
static int echo_frames(struct connection *c) {
    size_t offset = 0;
    if (c->phase == HTTP_REQUEST) {
        int answered = answer_request(c, &offset);
        if (answered <= 0) return answered;
    }
    while (c->phase == OPEN) {
        unsigned char *frame = c->in + offset;
        size_t available = c->in_length - offset, header = 2;
        if (available < 2) break;
        if ((frame[1] & 0x80) == 0) return -1; /* client frames are masked */
        uint64_t length = frame[1] & 0x7f;
        if (length == 126) {
            if (available < 4) break;
            length = (uint64_t)frame[2] << 8 | frame[3];
            header = 4;
        } else if (length == 127) {
            if (available < 10) break;
            length = 0;
            for (int i = 0; i < 8; i++) length = length << 8 | frame[2 + i];
            header = 10;
        }
        if (length > BUFFER_BYTES - 14) return -1;
        if (available < header + 4 + length) break;
        int opcode = frame[0] & 0x0f;
        size_t reply_header = length < 126 ? 2 : length < 65536 ? 4 : 10;
        if (c->out_length + reply_header + length > BUFFER_BYTES) {
            int flushed = flush_output(c);
            if (flushed < 0) return -1;
            if (flushed == 0) break; /* the rest waits until the socket takes this */
        }
        if (opcode == 0x0a) { /* a pong: nothing to answer */
            offset += header + 4 + length;
            continue;
        }
        if (opcode == 0x09) opcode = 0x0a; /* a ping is answered with a pong */
        if (opcode == 0x08) { /* a close is answered with its code, then the connection ends */
            c->phase = CLOSING;
            if (length > 2) length = 2;
        }
        unsigned char *out = c->out + c->out_length;
        out[0] = (unsigned char)((frame[0] & 0x80) | opcode);
        if (reply_header == 2) {
            out[1] = (unsigned char)length;
        } else if (reply_header == 4) {
            out[1] = 126;
            out[2] = (unsigned char)(length >> 8);
            out[3] = (unsigned char)length;
        } else {
            out[1] = 127;
            for (int i = 0; i < 8; i++) out[2 + i] = (unsigned char)(length >> (56 - 8 * i));
        }
        const unsigned char *mask = frame + header, *payload = frame + header + 4;
        unsigned char *target = out + reply_header;
        uint32_t key32;
        memcpy(&key32, mask, 4);
        uint64_t key64 = (uint64_t)key32 << 32 | key32;
        size_t i = 0;
        for (; i + 8 <= length; i += 8) {
            uint64_t word;
            memcpy(&word, payload + i, 8);
            word ^= key64;
            memcpy(target + i, &word, 8);
        }
        for (; i < length; i++) target[i] = payload[i] ^ mask[i & 3];
        c->out_length += reply_header + length;
        offset += header + 4 + length;
    }
    memmove(c->in, c->in + offset, c->in_length - offset);
    c->in_length -= offset;
    return 1;
}

/* Reads until the socket is empty (the sets are edge-triggered), then writes once. */
static int service(struct connection *c) {
    if (c->phase == TLS_HANDSHAKE) {
        int accepted = SSL_accept(c->ssl);
        if (accepted != 1) {
            int error = SSL_get_error(c->ssl, accepted);
            return error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE ? 0 : -1;
        }
        c->phase = HTTP_REQUEST;
    }
    int flushed = flush_output(c);
    if (flushed <= 0) return flushed;
    for (;;) {
        if (c->in_length == BUFFER_BYTES) return -1;
        int count = SSL_read(c->ssl, c->in + c->in_length, (int)(BUFFER_BYTES - c->in_length));
        if (count <= 0) {
            int error = SSL_get_error(c->ssl, count);
            if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) break;
            return -1;
        }
        c->in_length += (size_t)count;
        if (echo_frames(c) < 0) return -1;
        if (c->out_length == BUFFER_BYTES) break;
    }
    return flush_output(c) < 0 ? -1 : 0;
}

static void *event_loop(void *argument) {
    int listener = (int)(intptr_t)argument;
    int epoll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
    struct epoll_event events[256];
    for (;;) {
        int ready = epoll_wait(epoll, events, 256, -1);
        for (int i = 0; i < ready; i++) {
            struct connection *c = events[i].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = calloc(1, sizeof *c);
                    c->fd = fd;
                    c->ssl = SSL_new(context);
                    SSL_set_fd(c->ssl, fd);
                    struct epoll_event added = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
                    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &added);
                    if (service(c) < 0) drop(epoll, c);
                }
                continue;
            }
            if (service(c) < 0) drop(epoll, c);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: ceiling PORT CERT KEY THREADS\n");
        return 2;
    }
    port = atoi(argv[1]);
    /* A client that leaves mid-write (openssl s_time does) must cost an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);
    context = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_chain_file(context, argv[2]) != 1 ||
        SSL_CTX_use_PrivateKey_file(context, argv[3], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    /* Whole socket reads: without read-ahead OpenSSL reads each record's 5-byte header and its
     * body with two read calls. */
    SSL_CTX_set_read_ahead(context, 1);
    int threads = atoi(argv[4]);
    /* Every listening socket is bound before any thread serves, so none is missed. */
    int listeners[64];
    if (threads < 1 || threads > 64) threads = 1;
    for (int i = 0; i < threads; i++) listeners[i] = listening_socket();
    for (int i = 1; i < threads; i++) {
        pthread_t thread;
        pthread_create(&thread, NULL, event_loop, (void *)(intptr_t)listeners[i]);
    }
    printf("listening\n");
    fflush(stdout);
    event_loop((void *)(intptr_t)listeners[0]);
    return 0;
}
