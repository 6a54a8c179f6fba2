# Turns the numbered migration files of one driver into a C array of
# strings (NULL-terminated), so the binary carries its schema.
# Usage: cmake -DDIR=... -DNAME=... -DOUT=... -P embed_sql.cmake
file(GLOB files "${DIR}/*.sql")
list(SORT files)
set(body "/* generated from ${DIR}; do not edit */\n#include <stddef.h>\nconst char *const ${NAME}[] = {\n")
foreach(f IN LISTS files)
  file(READ "${f}" sql)
  string(REPLACE "\\" "\\\\" sql "${sql}")
  string(REPLACE "\"" "\\\"" sql "${sql}")
  string(REPLACE "\n" "\\n\"\n\"" sql "${sql}")
  string(APPEND body "\"${sql}\",\n")
endforeach()
string(APPEND body "NULL};\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
