# Sourced by scripts/test.sh: makes sure the local services the tests talk to are up,
# with the users and databases they expect (tests/sdk_hops.rs, the demo):
#
#   Redis       127.0.0.1:6379
#   RabbitMQ    127.0.0.1:5672   guest/guest
#   MariaDB     127.0.0.1:3306   root without password, database `test`
#   PostgreSQL  127.0.0.1:5432   user postgres without password (trust), database `test`
#
#   ensure_services        # installs (apt, as root) and starts each one not listening
#   services_status        # one line per service: listening or not (no changes)
#
# A service already listening is left alone. One that cannot be installed or started
# (not root, no apt, a failed start) is named on stderr; ensure_services then leaves
# HOPSCOPE_REQUIRE_SERVICES unset so the tests that need it skip with a message naming it.
# When all four are up it exports HOPSCOPE_REQUIRE_SERVICES=1: the tests then fail rather
# than skip if a service goes missing.

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# wait_port NAME PORT SECONDS
wait_port() {
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    port_open "$2" && return 0
    sleep 0.2
  done
  echo "services: $1 did not start listening on 127.0.0.1:$2 within $3 s" >&2
  return 1
}

# apt_install PACKAGE...: installs the packages that are missing (root and apt only).
apt_install() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "services: cannot install ${missing[*]} (needs root and apt)" >&2
    return 1
  fi
  echo "services: installing ${missing[*]} (apt)"
  if [ -z "${SERVICES_APT_UPDATED:-}" ]; then
    apt-get update -qq >/dev/null
    SERVICES_APT_UPDATED=1
  fi
  # Packages' own start scripts may fail without systemd; the start commands below do it.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || true
  for p in "${missing[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || { echo "services: installing $p failed" >&2; return 1; }
  done
}

start_redis() {
  apt_install redis-server || return 1
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null
  wait_port Redis 6379 20
}

start_rabbitmq() {
  apt_install rabbitmq-server || return 1
  rabbitmq-server -detached >/dev/null 2>&1
  # The Erlang VM takes a while to boot.
  wait_port RabbitMQ 5672 90
}

start_mariadb() {
  apt_install mariadb-server || return 1
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql >/dev/null
  wait_port MariaDB 3306 60 || return 1
  # Over TCP as root without a password, like the machine this suite was written on.
  mariadb -uroot <<'SQL'
CREATE DATABASE IF NOT EXISTS test;
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
}

start_postgresql() {
  apt_install postgresql || return 1
  local version
  version=$(ls /etc/postgresql | sort -V | tail -1)
  [ -n "$version" ] || { echo "services: no PostgreSQL cluster under /etc/postgresql" >&2; return 1; }
  local hba=/etc/postgresql/$version/main/pg_hba.conf
  # Trust on loopback, so tests connect as postgres without a password.
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 ||
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload >/dev/null 2>&1
  wait_port PostgreSQL 5432 30 || return 1
  su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname = 'test'\"" | grep -q 1 ||
    su postgres -c "createdb test"
  su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname = 'root'\"" | grep -q 1 ||
    su postgres -c "createuser --superuser root"
}

# name port start-function, one per line
SERVICES="Redis 6379 start_redis
RabbitMQ 5672 start_rabbitmq
MariaDB 3306 start_mariadb
PostgreSQL 5432 start_postgresql"

services_status() {
  local name port start
  while read -r name port start; do
    if port_open "$port"; then
      echo "services: $name listening on 127.0.0.1:$port"
    else
      echo "services: $name not listening on 127.0.0.1:$port"
    fi
  done <<<"$SERVICES"
}

ensure_services() {
  local name port start missing=()
  while read -r name port start; do
    if port_open "$port"; then
      echo "services: $name already listening on 127.0.0.1:$port"
    elif echo "services: starting $name" && "$start" </dev/null && port_open "$port"; then
      echo "services: $name started on 127.0.0.1:$port"
    else
      missing+=("$name")
    fi
  done <<<"$SERVICES"
  if [ ${#missing[@]} -eq 0 ]; then
    export HOPSCOPE_REQUIRE_SERVICES=1
  else
    unset HOPSCOPE_REQUIRE_SERVICES
    echo "services: not available: ${missing[*]}; the tests that need them will skip, naming them" >&2
  fi
}
