# Turns one file into a C string constant (the OpenAPI document served at
# /api/schema/). Usage: cmake -DIN=... -DNAME=... -DOUT=... -P embed_file.cmake
file(READ "${IN}" text)
string(REPLACE "\\" "\\\\" text "${text}")
string(REPLACE "\"" "\\\"" text "${text}")
string(REPLACE "\n" "\\n\"\n\"" text "${text}")
file(WRITE "${OUT}.tmp" "/* generated from ${IN}; do not edit */\nconst char ${NAME}[] = \"${text}\";\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
