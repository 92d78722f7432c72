# extract.awk - print the top-level C definitions of a kernel source file
# that are named in the variable "names" (space separated), in file order.
#
#   awk -v names="vfio_mig_step vfio_mig_states" -f extract.awk FILE.c
#
# A definition starts at a line that begins with a letter (kernel style puts
# nothing else in column 0 outside definitions but comments, preprocessor
# lines and blank lines) and ends at the first line beginning with "}" (the
# end of a function, table or type) or, before any "{", at a line ending
# with ";" (a declaration). Labels in column 0 come after the "{" and do not
# end it. "#define NAME" lines (with their continuations) are definitions
# too. A definition is named by the identifier before its first "(" or "["
# (a function or an array), else the last identifier before "{", "=" or ";".
# Fails if a name is not found.
function name_of(text,    head, m) {
	head = text
	sub(/[{=;].*/, "", head)
	if (match(head, /[A-Za-z_][A-Za-z0-9_]*[ \t\n]*[(\[]/)) {
		m = substr(head, RSTART, RLENGTH)
		sub(/[ \t\n]*[(\[]$/, "", m)
		return m
	}
	gsub(/[^A-Za-z0-9_]+/, " ", head)
	sub(/ +$/, "", head)
	sub(/.* /, "", head)
	return head
}
function emit(text, name) {
	if (name in want) {
		printf "%s\n", text
		found[name] = 1
	}
}
BEGIN {
	n = split(names, list, " ")
	for (i = 1; i <= n; i++)
		want[list[i]] = 1
}
indef == "define" {
	text = text "\n" $0
	if ($0 !~ /\\$/) {
		emit(text, defname)
		indef = ""
	}
	next
}
indef == "c" {
	text = text "\n" $0
	if ($0 ~ /{/)
		braced = 1
	if ($0 ~ /^}/ || (!braced && $0 ~ /;[ \t]*$/)) {
		emit(text, name_of(text))
		indef = ""
	}
	next
}
/^#[ \t]*define[ \t]+[A-Za-z_]/ {
	defname = $0
	sub(/^#[ \t]*define[ \t]+/, "", defname)
	sub(/[^A-Za-z0-9_].*/, "", defname)
	text = $0
	if ($0 ~ /\\$/)
		indef = "define"
	else
		emit(text, defname)
	next
}
/^[A-Za-z_]/ {
	text = $0
	braced = $0 ~ /{/
	if ($0 ~ /^}/ || (!braced && $0 ~ /;[ \t]*$/))
		emit(text, name_of(text))
	else
		indef = "c"
}
END {
	for (i = 1; i <= n; i++) {
		if (!(list[i] in found)) {
			printf "extract.awk: %s: no definition of %s\n", FILENAME, list[i] > "/dev/stderr"
			bad = 1
		}
	}
	exit bad
}
