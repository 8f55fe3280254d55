# Sourced by the benchmark scripts: starts a throwaway Debian clickhouse-server
# (18.16 on this machine kind) under a directory of its own, on loopback.
#
#   start_clickhouse DIR HTTP_PORT TCP_PORT   # sets CH_PID; waits for the HTTP port
#
# The caller kills CH_PID when done (the scripts add it to their cleanup list).
start_clickhouse() {
  local dir=$1 http_port=$2 tcp_port=$3
  mkdir -p "$dir/data"
  cat > "$dir/config.xml" <<XML
<yandex>
  <logger><level>warning</level><log>$dir/server.log</log><errorlog>$dir/error.log</errorlog></logger>
  <http_port>$http_port</http_port><tcp_port>$tcp_port</tcp_port><listen_host>127.0.0.1</listen_host>
  <path>$dir/data/</path><tmp_path>$dir/data/tmp/</tmp_path>
  <user_files_path>$dir/data/user_files/</user_files_path><format_schema_path>$dir/data/format_schemas/</format_schema_path>
  <mark_cache_size>5368709</mark_cache_size><max_concurrent_queries>50</max_concurrent_queries>
  <users_config>$dir/users.xml</users_config><default_profile>default</default_profile>
  <default_database>default</default_database><timezone>UTC</timezone>
</yandex>
XML
  cat > "$dir/users.xml" <<XML
<yandex><profiles><default></default></profiles>
<users><default><password></password><networks><ip>::/0</ip></networks><profile>default</profile><quota>default</quota></default></users>
<quotas><default></default></quotas></yandex>
XML
  clickhouse-server --config-file="$dir/config.xml" > "$dir/stdout.log" 2>&1 &
  CH_PID=$!
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null && return 0; sleep 0.1; done
  echo "clickhouse-server never opened port $http_port; see $dir" >&2
  return 1
}
