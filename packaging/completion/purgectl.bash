# bash completion for purgectl(8)
_purgectl_json() {
	# Ask the daemon; print nothing if it does not answer.
	purgectl "${sock[@]}" --json "$@" 2>/dev/null
}

_purgectl() {
	local cur prev words cword
	_init_completion || return
	local -a sock=()
	local i
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-s | --socket) sock=(-s "${words[i + 1]}") ;;
		--socket=*) sock=("${words[i]}") ;;
		esac
	done

	case $prev in
	-s | --socket | --output)
		_filedir
		return
		;;
	--limit | --offset | --instances)
		return
		;;
	--target)
		COMPREPLY=($(compgen -W "$(_purgectl_json targets | sed -n 's/^ *"name": "\(.*\)",\{0,1\}$/\1/p')" -- "$cur"))
		return
		;;
	esac

	local cmd="" sub="" n=0
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-s | --socket | --limit | --offset | --target | --instances | --output) ((i++)) ;;
		-*) ;;
		*)
			if [[ -z $cmd ]]; then cmd=${words[i]}; elif [[ -z $sub ]]; then sub=${words[i]}; fi
			((n++))
			;;
		esac
	done

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "--socket --json --yes --wait --detach --limit --offset --target --instances --manifest --output --replace --help --version" -- "$cur"))
		return
	fi
	case $cmd in
	"")
		COMPREPLY=($(compgen -W "status targets plan purge tasks task cancel wait reload approve reject archive restore crdb token" -- "$cur"))
		;;
	plan | purge)
		[[ $n -eq 1 ]] && COMPREPLY=($(compgen -W "$(_purgectl_json targets | sed -n 's/^ *"name": "\(.*\)",\{0,1\}$/\1/p')" -- "$cur"))
		;;
	task | cancel | wait)
		[[ $n -eq 1 ]] && COMPREPLY=($(compgen -W "$(_purgectl_json tasks --limit 100 | sed -n 's/^ *"id": "\(.*\)",\{0,1\}$/\1/p')" -- "$cur"))
		;;
	archive)
		[[ $n -eq 1 ]] && COMPREPLY=($(compgen -W "$(_purgectl_json tasks --limit 100 | sed -n 's/^ *"id": "\(.*\)",\{0,1\}$/\1/p')" -- "$cur"))
		;;
	restore)
		# Only crdb purges: each task's "id" comes before its "operation".
		[[ $n -eq 1 ]] && COMPREPLY=($(compgen -W "$(_purgectl_json tasks --limit 1000 | awk -F'"' '/^ *"id": / { id = $4 } /^ *"operation": "crdb.purge"/ { print id }')" -- "$cur"))
		;;
	approve | reject)
		# Only the tasks awaiting approval: each task's "id" comes before its "status".
		[[ $n -eq 1 ]] && COMPREPLY=($(compgen -W "$(_purgectl_json tasks --limit 1000 | awk -F'"' '/^ *"id": / { id = $4 } /^ *"status": "awaiting_approval"/ { print id }')" -- "$cur"))
		;;
	crdb)
		if [[ $n -eq 1 ]]; then
			COMPREPLY=($(compgen -W "purge tasks" -- "$cur"))
		elif [[ $sub == purge && $n -eq 2 ]]; then
			COMPREPLY=($(compgen -W "$(_purgectl_json targets | sed -n 's/^ *"name": "\(.*\)",\{0,1\}$/\1/p')" -- "$cur"))
		fi
		;;
	token)
		[[ $n -eq 1 ]] && COMPREPLY=($(compgen -W "new" -- "$cur"))
		;;
	esac
} &&
	complete -F _purgectl purgectl
