#!/usr/bin/env bash
# A throw-away nginx on loopback for the fetch tests and benchmark: it serves one directory over
# HTTPS (or plain HTTP) with a certificate from a CA made for this run only.
#
#   tests/nginx/setup.sh start SERVE_DIR WORK_DIR [PORT]   # PORT default: a free one, chosen here
#   tests/nginx/setup.sh stop WORK_DIR
#
# `start` prints `key=value` lines on stdout (the value runs to the end of the line), and
# nothing else:
#   port=NNNN
#   url=https://127.0.0.1:NNNN/            # the served directory's root, with a trailing slash
#   ca=WORK_DIR/ca.pem                     # the CA to trust (absent with MODELVET_NGINX_SCHEME=http)
#   access_log=WORK_DIR/access.log         # one line per request: `STATUS METHOD URI BYTES "RANGE"`
#   pid=NNNN                               # the nginx master
# Progress and errors go to stderr; exit 0 once nginx answers (waits at most 15 s), 2 on any
# failure (nginx is then stopped again).
#
# Environment: MODELVET_NGINX (the binary; default `nginx` on PATH, else /usr/sbin/nginx),
# MODELVET_NGINX_SCHEME=https|http (default https). Not `NGINX`: nginx itself reads that
# variable as listening sockets inherited from an old master, and then does not daemonize.
#
# Nothing needs root: pid file, logs, temp paths, keys and nginx.conf all live in WORK_DIR. nginx
# runs as a daemon (`daemon on`): it binds the port before it forks, so a port that is taken or
# a bad configuration is reported by the exit status of `nginx` itself; the master detaches and
# keeps no pipe of the caller open; `stop` signals the master found in WORK_DIR/nginx.pid. The
# certificates are valid for one day, for `127.0.0.1` and `localhost` only.
set -euo pipefail

log() { printf 'nginx-setup: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

find_nginx() {
    if [[ -n "${MODELVET_NGINX:-}" ]]; then
        printf '%s\n' "$MODELVET_NGINX"
    elif command -v nginx > /dev/null 2>&1; then
        command -v nginx
    elif [[ -x /usr/sbin/nginx ]]; then
        printf '%s\n' /usr/sbin/nginx
    else
        die "nginx not found (install Debian's \`nginx\` package, or set MODELVET_NGINX)"
    fi
}

absolute() { (cd "$1" && pwd -P); }

# The master's pid from WORK/nginx.pid, only if that process is still an nginx of this WORK
# (a stale pid file must not make us signal an unrelated process).
master_pid() {  # work
    local pid
    [[ -s "$1/nginx.pid" ]] || return 1
    pid="$(tr -dc '0-9' < "$1/nginx.pid")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2> /dev/null || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null | grep -qF -- "$1/nginx.conf" || return 1
    printf '%s\n' "$pid"
}

stop() {  # work
    local work pid
    [[ -d "$1" ]] || { log "no work dir $1; nothing to stop"; return 0; }
    work="$(absolute "$1")"
    pid="$(master_pid "$work")" || { log "no nginx running for $work"; return 0; }
    kill -TERM "$pid" 2> /dev/null || true  # fast shutdown: workers exit, then the master
    for _ in $(seq 100); do
        kill -0 "$pid" 2> /dev/null || { log "stopped nginx $pid"; return 0; }
        sleep 0.05
    done
    # The daemonized master leads its own process group; its workers share it.
    log "nginx $pid ignored SIGTERM for 5 s; killing its process group"
    kill -KILL -- "-$pid" 2> /dev/null || kill -KILL "$pid" 2> /dev/null || true
}

make_certificates() {  # work
    local work="$1"
    # Our own openssl config: the system one may add extensions of its own (duplicates fail).
    cat > "$work/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = modelvet throw-away test CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -config "$work/openssl.cnf" -extensions ca -days 1 \
        -keyout "$work/ca.key" -out "$work/ca.pem" 2> "$work/openssl.log" \
        || { cat "$work/openssl.log" >&2; die "could not make the CA"; }
    openssl req -new "${ec[@]}" -config "$work/openssl.cnf" -subj /CN=127.0.0.1 \
        -keyout "$work/server.key" -out "$work/server.csr" 2>> "$work/openssl.log" \
        || { cat "$work/openssl.log" >&2; die "could not make the server key"; }
    openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days 1 \
        -extfile "$work/openssl.cnf" -extensions server -out "$work/server.pem" 2>> "$work/openssl.log" \
        || { cat "$work/openssl.log" >&2; die "could not sign the server certificate"; }
    chmod 600 "$work/ca.key" "$work/server.key"
}

write_config() {  # work serve port scheme
    local work="$1" serve="$2" port="$3" scheme="$4" user="" listen tls=""
    # Workers of a root master drop to `nobody` by default, who cannot read a 0700 temp dir.
    [[ "$(id -u)" -eq 0 ]] && user="user root;"
    if [[ "$scheme" == https ]]; then
        listen="listen 127.0.0.1:$port ssl;"
        tls="ssl_certificate $work/server.pem;
        ssl_certificate_key $work/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;"
    else
        listen="listen 127.0.0.1:$port;"
    fi
    cat > "$work/nginx.conf" <<EOF
# Written by tests/nginx/setup.sh; everything lives under $work.
$user
daemon on;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log info;

events {
    worker_connections 64;
}

http {
    types {}
    default_type application/octet-stream;
    log_format modelvet '\$status \$request_method \$uri \$body_bytes_sent "\$http_range"';
    access_log $work/access.log modelvet;
    client_body_temp_path $work/tmp/client_body;
    proxy_temp_path $work/tmp/proxy;
    fastcgi_temp_path $work/tmp/fastcgi;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 10s;

    server {
        $listen
        server_name 127.0.0.1 localhost;
        $tls
        root $serve;
        # Static files answer Range requests with 206 by default (max_ranges unlimited).
        location / {
            try_files \$uri =404;
        }
    }
}
EOF
}

start() {  # serve work [port]
    [[ $# -ge 2 && $# -le 3 ]] || die "usage: $0 start SERVE_DIR WORK_DIR [PORT]"
    [[ -d "$1" ]] || die "no directory to serve at $1"
    mkdir -p "$2"
    local serve work port="${3:-}" scheme="${MODELVET_NGINX_SCHEME:-https}" nginx
    serve="$(absolute "$1")"
    work="$(absolute "$2")"
    nginx="$(find_nginx)"
    [[ "$scheme" == https || "$scheme" == http ]] || die "MODELVET_NGINX_SCHEME must be https or http"
    command -v curl > /dev/null || die "curl not found"
    if master_pid "$work" > /dev/null; then
        die "an nginx already runs for $work; run \`$0 stop $work\` first"
    fi
    mkdir -p "$work/tmp"
    rm -f "$work/nginx.pid"
    [[ "$scheme" == https ]] && make_certificates "$work"

    # A caller's port is used as is; otherwise random ports below the kernel's ephemeral range
    # are tried until one binds (nginx reports a taken port synchronously, see above).
    local attempts=1 started=0
    [[ -z "$port" ]] && attempts=20
    for _ in $(seq "$attempts"); do
        [[ -n "${3:-}" ]] || port=$(( 10000 + RANDOM % 22000 ))
        write_config "$work" "$serve" "$port" "$scheme"
        if env -u NGINX "$nginx" -p "$work" -c "$work/nginx.conf" -e "$work/error.log" \
            < /dev/null > "$work/nginx.out" 2>&1; then
            started=1
            break
        fi
        grep -q 'Address already in use' "$work/nginx.out" || break
        log "port $port is taken"
    done
    if [[ "$started" -ne 1 ]]; then
        cat "$work/nginx.out" >&2
        die "nginx did not start (config: $work/nginx.conf, log: $work/error.log)"
    fi

    local url="$scheme://127.0.0.1:$port/" curl_tls=() code=""
    [[ "$scheme" == https ]] && curl_tls=(--cacert "$work/ca.pem")
    local deadline=$(( SECONDS + 15 ))
    while (( SECONDS < deadline )); do
        # Any HTTP status means nginx answers (the root is no listing: 404).
        code="$(curl -sS "${curl_tls[@]}" --max-time 2 -o /dev/null -w '%{http_code}' "$url" 2> "$work/curl.log")" \
            && [[ "$code" != 000 ]] && break
        code=""
        sleep 0.1
    done
    if [[ -z "$code" ]]; then
        cat "$work/curl.log" >&2
        stop "$work"
        die "nginx started but does not answer at $url"
    fi

    printf 'port=%s\n' "$port"
    printf 'url=%s\n' "$url"
    [[ "$scheme" == https ]] && printf 'ca=%s\n' "$work/ca.pem"
    printf 'access_log=%s\n' "$work/access.log"
    printf 'pid=%s\n' "$(master_pid "$work")"
    log "nginx $("$nginx" -v 2>&1 | sed 's/^nginx version: //') serves $serve at $url"
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop)
        [[ $# -eq 2 ]] || die "usage: $0 stop WORK_DIR"
        stop "$2"
        ;;
    *) die "usage: $0 start SERVE_DIR WORK_DIR [PORT] | $0 stop WORK_DIR" ;;
esac
