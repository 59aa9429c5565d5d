#!/usr/bin/env bash
# Starts a throwaway ClickHouse server for tests.
#
# Usage: bash .ci/clickhouse.sh <dir> <tcp-port>
#
# Installs clickhouse-server/clickhouse-client with apt-get when missing,
# writes a minimal config.xml and users.xml into <dir> (every path the server
# writes to lives under <dir>), starts the server in the background listening
# on 127.0.0.1:<tcp-port> (native protocol) and 127.0.0.1:<tcp-port+1> (HTTP),
# waits until it answers and prints its pid. Works as root and as an
# unprivileged user. The log level is "debug" so that the server log
# (<dir>/log/clickhouse-server.log) records every executed query; CI greps it
# for "CREATE DATABASE eventsync_test_" to prove the ClickHouse tests ran.
#
# Stop it with: kill "$(cat <dir>/clickhouse.pid)"
set -euo pipefail

if [ "$#" -ne 2 ]; then
	echo "usage: $0 <dir> <tcp-port>" >&2
	exit 2
fi
dir=$1
port=$2
case $port in
'' | *[!0-9]*)
	echo "tcp-port must be a number, got '$port'" >&2
	exit 2
	;;
esac
http_port=$((port + 1))

server_bin=$(command -v clickhouse-server || true)
if [ -z "$server_bin" ] && [ -x /usr/sbin/clickhouse-server ]; then
	server_bin=/usr/sbin/clickhouse-server
fi
if [ -z "$server_bin" ] || ! command -v clickhouse-client >/dev/null; then
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		sudo="sudo"
	fi
	export DEBIAN_FRONTEND=noninteractive
	# Refresh the package lists only when apt does not know the package yet.
	if ! apt-cache show clickhouse-server >/dev/null 2>&1; then
		$sudo apt-get update
	fi
	$sudo apt-get install -y clickhouse-server clickhouse-client
	server_bin=$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)
fi

if clickhouse-client --port "$port" -q 'SELECT 1' >/dev/null 2>&1; then
	echo "something already answers ClickHouse queries on port $port" >&2
	exit 1
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"

cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <!-- debug: the log shows every executed query (executeQuery lines). -->
        <level>debug</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$port</tcp_port>
    <http_port>$http_port</http_port>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <umask>022</umask>
    <mlock_executable>false</mlock_executable>
    <query_log>
        <database>system</database>
        <table>query_log</table>
        <flush_interval_milliseconds>7500</flush_interval_milliseconds>
    </query_log>
</yandex>
XML

cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <log_queries>1</log_queries>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
XML

# setsid detaches the server from this shell's process group so that the
# caller's job control (or CI step) ending does not take it down.
cd "$dir"
setsid "$server_bin" --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$dir/clickhouse.pid"

for _ in $(seq 1 120); do
	if clickhouse-client --port "$port" -q 'SELECT 1' >/dev/null 2>&1; then
		echo "$pid"
		exit 0
	fi
	if ! kill -0 "$pid" 2>/dev/null; then
		break
	fi
	sleep 0.5
done

echo "clickhouse-server did not answer on 127.0.0.1:$port within 60s" >&2
for f in "$dir/log/stdout.log" "$dir/log/clickhouse-server.err.log" "$dir/log/clickhouse-server.log"; do
	if [ -f "$f" ]; then
		echo "--- tail $f" >&2
		tail -n 40 "$f" >&2
	fi
done
kill "$pid" 2>/dev/null || true
exit 1
