# Embeds the dashboard (web/) into the binary: every file becomes a byte
# array, every asset but index.html gets a content hash in its name
# (name.<hash>.ext, so it can be cached for a year), and index.html's
# references to /dashboard/<name> are rewritten to the hashed names.
# The JavaScript client (CLIENT_DIR, clients/js/) is embedded beside it
# under its own names (served at /client/<name>, also without the
# dashboard). Fails the build when what the dashboard loads — web/ and the
# client's .js files, which it imports — is over MAX bytes.
# Usage: cmake -DDIR=web -DCLIENT_DIR=clients/js -DOUT=file.c -DMAX=102400 -P embed_web.cmake
file(GLOB_RECURSE files RELATIVE "${DIR}" "${DIR}/*")
list(SORT files)
set(types_html "text/html; charset=utf-8")
set(types_css "text/css; charset=utf-8")
set(types_js "text/javascript; charset=utf-8")
set(types_svg "image/svg+xml")
set(types_ts "application/typescript; charset=utf-8")

set(total 0)
set(assets "")
foreach(f IN LISTS files)
  if(f STREQUAL "index.html")
    continue()
  endif()
  get_filename_component(ext "${f}" LAST_EXT)
  string(SUBSTRING "${ext}" 1 -1 ext)
  if(NOT DEFINED types_${ext})
    message(FATAL_ERROR "embed_web: ${f}: no content type for .${ext} files")
  endif()
  file(SHA256 "${DIR}/${f}" sum)
  string(SUBSTRING "${sum}" 0 16 sum)
  string(REGEX REPLACE "\\.${ext}$" ".${sum}.${ext}" hashed "${f}")
  list(APPEND assets "${f}")
  set(hashed_${f} "${hashed}")
  set(etag_${f} "${sum}")
endforeach()
if(NOT EXISTS "${DIR}/index.html")
  message(FATAL_ERROR "embed_web: ${DIR}/index.html is missing")
endif()

# index.html with the hashed names; the longest names first, so that
# /dashboard/a.js never rewrites part of /dashboard/a.js.map.
file(READ "${DIR}/index.html" index)
set(by_length "")
foreach(f IN LISTS assets)
  string(LENGTH "${f}" n)
  math(EXPR n "10000 - ${n}")
  list(APPEND by_length "${n}|${f}")
endforeach()
list(SORT by_length)
foreach(entry IN LISTS by_length)
  string(REGEX REPLACE "^[0-9]+\\|" "" f "${entry}")
  string(REPLACE "\"/dashboard/${f}\"" "\"/dashboard/${hashed_${f}}\"" index "${index}")
endforeach()
file(WRITE "${OUT}.index" "${index}")
file(SHA256 "${OUT}.index" sum)
string(SUBSTRING "${sum}" 0 16 index_etag)

# One array per file, then the tables h_dashboard.c reads.
set(body "")
set(i 0)
macro(embed_one src path type etag)
  file(SIZE "${src}" size)
  file(READ "${src}" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(REGEX REPLACE "((0x..,){24})" "\\1\n" hex "${hex}")
  string(APPEND body "static const unsigned char f${i}[] = {\n${hex}0};\n")
  string(APPEND table "    {\"${path}\", \"${type}\", f${i}, ${size}, \"\\\"${etag}\\\"\"},\n")
  math(EXPR i "${i} + 1")
endmacro()

set(table "")
foreach(f IN LISTS assets ITEMS index.html)
  if(f STREQUAL "index.html")
    embed_one("${OUT}.index" "index.html" "${types_html}" "${index_etag}")
  else()
    get_filename_component(ext "${f}" LAST_EXT)
    string(SUBSTRING "${ext}" 1 -1 ext)
    embed_one("${DIR}/${f}" "${hashed_${f}}" "${types_${ext}}" "${etag_${f}}")
  endif()
  math(EXPR total "${total} + ${size}")
endforeach()
set(web_table "${table}")
set(nweb ${i})

# The client: its own names (no hash; the ETag tells a cache it changed).
set(table "")
set(client_files "")
if(DEFINED CLIENT_DIR)
  file(GLOB client_files RELATIVE "${CLIENT_DIR}" "${CLIENT_DIR}/*.js" "${CLIENT_DIR}/*.d.ts")
  list(SORT client_files)
endif()
foreach(f IN LISTS client_files)
  get_filename_component(ext "${f}" LAST_EXT)
  string(SUBSTRING "${ext}" 1 -1 ext)
  file(SHA256 "${CLIENT_DIR}/${f}" sum)
  string(SUBSTRING "${sum}" 0 16 sum)
  embed_one("${CLIENT_DIR}/${f}" "${f}" "${types_${ext}}" "${sum}")
  if(ext STREQUAL "js")
    math(EXPR total "${total} + ${size}")
  endif()
endforeach()
math(EXPR nclient "${i} - ${nweb}")
if(nclient EQUAL 0)
  set(table "    {0},\n") # C has no empty array
endif()
if(total GREATER MAX)
  message(FATAL_ERROR "embed_web: the dashboard (with the client's .js) is ${total} bytes, over its budget of ${MAX}")
endif()

file(WRITE "${OUT}.tmp" "/* generated from ${DIR} and ${CLIENT_DIR} by embed_web.cmake; do not edit */
#include \"server.h\"

${body}
const struct web_file web_files[] = {
${web_table}};
const size_t web_nfiles = ${nweb};
const struct web_file client_files[] = {
${table}};
const size_t client_nfiles = ${nclient};
")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp" "${OUT}.index")
