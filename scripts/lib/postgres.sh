# shellcheck shell=bash disable=SC2034 # the PG_* globals are read by the scripts that source this
# PostgreSQL helpers shared by scripts/run and scripts/test. Source it; it only defines functions.
#
#   pg_parse_url URL          sets PG_URL_HOST PG_URL_PORT PG_URL_DB PG_URL_MAINT (same server, db "postgres")
#   pg_is_up HOST PORT        true if a server accepts connections there (waits while it is starting)
#   pg_is_local HOST          true for 127.0.0.1, localhost, ::1 or an empty host
#   pg_can_connect URL        true if URL's server lets us in (else the reason is in PG_CONNECT_ERR)
#   pg_ensure_database URL    creates URL's database if it does not exist
#   pg_throwaway_start DIR [POSTGRES_OPTS]
#                             makes sure a private cluster in DIR runs on 127.0.0.1 (initdb on first
#                             use, reuse afterwards); sets PG_LOCAL_PORT, and PG_LOCAL_STARTED=1 if
#                             this call started it (0 if it was already running)
#   pg_throwaway_stop         stops the cluster pg_throwaway_start set up
#   pg_throwaway_up DIR [POSTGRES_OPTS]
#                             pg_throwaway_start, plus an EXIT trap that stops the cluster if this
#                             call started it and KEEP_DB is not 1 (then PG_STOP_AT_EXIT=1)
#
# The throwaway cluster: trust auth, superuser "postgres", UTF8, listening on 127.0.0.1 only, on
# PGPORT_LOCAL (default 5433) or the next free port, unix socket inside DIR, log in DIR/postgres.log.
# initdb and postgres refuse to run as root: as root, DIR belongs to the "postgres" OS user (created
# as a system user if missing) and the server binaries run through runuser; if that user cannot
# reach DIR (it sits under e.g. /root), the cluster lives in /var/tmp/paymentledger-<name>-<cksum of DIR>.

pg_log() { printf '%s: %s\n' "${PG_LOG_PREFIX:-postgres}" "$*" >&2; }
pg_die() { pg_log "error: $*"; exit 1; }

pg_parse_url() {
	local re='^(postgres|postgresql)://(([^@/]*)@)?([^:/?]*)(:([0-9]+))?(/([^?]*))?(\?.*)?$'
	[[ $1 =~ $re ]] || pg_die "cannot parse the PostgreSQL URL (want postgres://[user[:password]@]host[:port]/database[?params])"
	local user=${BASH_REMATCH[3]%%:*}
	PG_URL_HOST=${BASH_REMATCH[4]:-127.0.0.1}
	PG_URL_PORT=${BASH_REMATCH[6]:-5432}
	PG_URL_DB=${BASH_REMATCH[8]:-${user:-postgres}}
	PG_URL_MAINT="${BASH_REMATCH[1]}://${BASH_REMATCH[2]}${BASH_REMATCH[4]}${BASH_REMATCH[5]}/postgres${BASH_REMATCH[9]}"
}

pg_is_local() { [[ -z $1 || $1 == 127.0.0.1 || $1 == localhost || $1 == ::1 || $1 == '[::1]' ]]; }

# pg_bindir prints the directory of the installed server binaries (initdb, pg_ctl, postgres).
pg_bindir() {
	local d
	if command -v pg_config >/dev/null 2>&1 && d=$(pg_config --bindir 2>/dev/null) && [[ -x $d/initdb ]]; then
		printf '%s\n' "$d"
		return
	fi
	while IFS= read -r d; do
		if [[ -x $d/initdb ]]; then
			printf '%s\n' "$d"
			return
		fi
	done < <(printf '%s\n' /usr/lib/postgresql/*/bin /usr/pgsql-*/bin | sort -rV)
	d=$(command -v initdb 2>/dev/null) || return 1
	dirname "$d"
}

# pg_tool NAME prints the path of a client tool (psql, pg_isready), server install first.
pg_tool() {
	local d
	if d=$(pg_bindir) && [[ -x $d/$1 ]]; then
		printf '%s\n' "$d/$1"
	else
		command -v "$1"
	fi
}

pg_is_up() {
	local host=$1 port=$2 isready rc i
	if ! isready=$(pg_tool pg_isready); then
		(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
		return
	fi
	for ((i = 0; i < 60; i++)); do
		rc=0
		"$isready" -q -h "$host" -p "$port" -t 3 || rc=$?
		# 0: accepting; 1: rejecting (starting up or shutting down): wait; 2, 3: nobody there.
		((rc == 1)) || return "$rc"
		sleep 0.5
	done
	return 1
}

pg_can_connect() {
	pg_parse_url "$1"
	local psql
	psql=$(pg_tool psql) || pg_die "psql not found (Debian: apt-get install postgresql-client)"
	PG_CONNECT_ERR=$(PGCONNECT_TIMEOUT=5 "$psql" "$PG_URL_MAINT" -wXAtq -c 'SELECT 1' 2>&1 >/dev/null) && return
	PG_CONNECT_ERR=${PG_CONNECT_ERR//$'\n'/ }
	return 1
}

pg_ensure_database() {
	pg_parse_url "$1"
	local psql exists
	psql=$(pg_tool psql) || pg_die "psql not found (Debian: apt-get install postgresql-client)"
	exists=$("$psql" "$PG_URL_MAINT" -wXAtq -v ON_ERROR_STOP=1 -v db="$PG_URL_DB" <<<"SELECT 1 FROM pg_database WHERE datname = :'db';") ||
		pg_die "cannot query the databases at $PG_URL_HOST:$PG_URL_PORT"
	if [[ $exists == 1 ]]; then
		pg_log "database $PG_URL_DB exists"
	elif "$psql" "$PG_URL_MAINT" -wXq -v ON_ERROR_STOP=1 -v db="$PG_URL_DB" <<<'CREATE DATABASE :"db";'; then
		pg_log "created database $PG_URL_DB"
	else
		pg_die "cannot create database $PG_URL_DB at $PG_URL_HOST:$PG_URL_PORT"
	fi
}

pg_port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pg__as_owner runs a command as the throwaway cluster's owner.
pg__as_owner() {
	if ((EUID == 0)); then
		(cd / && runuser -u "$PG_LOCAL_OWNER" -- "$@")
	else
		"$@"
	fi
}

# pg__prepare_dir creates DIR for the cluster owner (as root: the postgres OS user). It fails if
# that user cannot reach DIR because a directory above DIR's parent is closed to it.
pg__prepare_dir() {
	local dir=$1 parent
	parent=$(dirname "$dir")
	mkdir -p "$parent"
	if ((EUID != 0)); then
		PG_LOCAL_OWNER=$(id -un)
		[[ -d $dir ]] || mkdir -m 700 "$dir"
		return
	fi
	if [[ -f $dir/PG_VERSION ]]; then
		PG_LOCAL_OWNER=$(stat -c %U "$dir")
	else
		PG_LOCAL_OWNER=postgres
		if ! id -u postgres >/dev/null 2>&1; then
			pg_log "creating the system user postgres (initdb and postgres refuse to run as root)"
			useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postgres
		fi
	fi
	runuser -u "$PG_LOCAL_OWNER" -- test -x "$(dirname "$parent")" || return 1
	if ! runuser -u "$PG_LOCAL_OWNER" -- test -x "$parent"; then
		pg_log "letting $PG_LOCAL_OWNER into $parent (chmod o+x)"
		chmod o+x "$parent"
	fi
	if [[ ! -f $dir/PG_VERSION ]]; then
		[[ -d $dir ]] || mkdir -m 700 "$dir"
		chown "$PG_LOCAL_OWNER:" "$dir"
		chmod 700 "$dir"
	fi
	runuser -u "$PG_LOCAL_OWNER" -- test -w "$dir"
}

pg_throwaway_start() {
	local dir=$1 opts=${2:-} bindir out port major
	bindir=$(pg_bindir) ||
		pg_die "no PostgreSQL server binaries (initdb) found: install PostgreSQL (Debian: apt-get install -y postgresql) or start a server"
	[[ $dir != *"'"* ]] || pg_die "the cluster directory must not contain a single quote: $dir"
	if ! pg__prepare_dir "$dir"; then
		# As root, with DIR under a directory the postgres user cannot enter (e.g. /root): use a
		# fixed place derived from DIR instead, so later runs find the same cluster.
		local alt
		alt=/var/tmp/paymentledger-$(basename "$dir")-$(printf '%s' "$dir" | cksum | cut -d' ' -f1)
		pg_log "the OS user $PG_LOCAL_OWNER cannot reach $dir; using $alt instead"
		dir=$alt
		pg__prepare_dir "$dir" || pg_die "the OS user $PG_LOCAL_OWNER cannot use $dir"
	fi
	dir=$(cd "$dir" && pwd)
	PG_LOCAL_DIR=$dir PG_LOCAL_BINDIR=$bindir
	major=$("$bindir/postgres" -V | sed -E 's/.* ([0-9]+)[.0-9]*.*/\1/')
	if [[ ! -f $dir/PG_VERSION ]]; then
		pg_log "initdb $dir (PostgreSQL $major, trust auth, user postgres, UTF8)"
		out=$(pg__as_owner "$bindir/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C 2>&1) || {
			printf '%s\n' "$out" >&2
			pg_die "initdb failed"
		}
	elif [[ $(<"$dir/PG_VERSION") != "$major" ]]; then
		pg_die "$dir holds a PostgreSQL $(<"$dir/PG_VERSION") cluster but the binaries in $bindir are $major: remove it (rm -rf $dir)"
	fi
	if pg__as_owner "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
		PG_LOCAL_PORT=$(sed -n 4p "$dir/postmaster.pid")
		PG_LOCAL_STARTED=0
		pg_log "reusing the running throwaway cluster in $dir (127.0.0.1:$PG_LOCAL_PORT)"
		return
	fi
	port=${PGPORT_LOCAL:-5433}
	while ! pg_port_free "$port"; do
		((port < ${PGPORT_LOCAL:-5433} + 50)) || pg_die "no free port from ${PGPORT_LOCAL:-5433} on"
		port=$((port + 1))
	done
	# The unix socket goes into the cluster directory unless that path is too long for a socket.
	local sockdir=$dir
	((${#dir} + 20 < 100)) || sockdir=
	pg_log "starting the throwaway cluster in $dir on 127.0.0.1:$port (log: $dir/postgres.log)"
	pg__as_owner "$bindir/pg_ctl" -D "$dir" -l "$dir/postgres.log" -w -t 60 \
		-o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='$sockdir' $opts" start >/dev/null || {
		tail -n 20 "$dir/postgres.log" >&2 || true
		pg_die "the throwaway cluster did not start"
	}
	PG_LOCAL_PORT=$port
	PG_LOCAL_STARTED=1
}

pg_throwaway_stop() {
	pg_log "stopping the throwaway cluster in $PG_LOCAL_DIR"
	pg__as_owner "$PG_LOCAL_BINDIR/pg_ctl" -D "$PG_LOCAL_DIR" -m fast -w -t 60 stop >/dev/null ||
		pg_log "warning: could not stop the cluster in $PG_LOCAL_DIR"
}

pg_throwaway_up() {
	pg_throwaway_start "$@"
	PG_STOP_AT_EXIT=0
	if [[ $PG_LOCAL_STARTED == 1 && ${KEEP_DB:-0} != 1 ]]; then
		PG_STOP_AT_EXIT=1
		trap pg_throwaway_stop EXIT
		trap 'exit 130' INT
		trap 'exit 143' TERM
	fi
}
