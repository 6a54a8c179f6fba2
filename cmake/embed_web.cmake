# Embeds the dashboard (web/) into the binary: every file becomes a byte
# array, every asset but index.html gets a content hash in its name
# (name.<hash>.ext, so it can be cached for a year), and index.html's
# references to /dashboard/<name> are rewritten to the hashed names.
# Fails the build when the whole dashboard is over MAX bytes.
# Usage: cmake -DDIR=web -DOUT=file.c -DMAX=102400 -P embed_web.cmake
file(GLOB_RECURSE files RELATIVE "${DIR}" "${DIR}/*")
list(SORT files)
set(types_html "text/html; charset=utf-8")
set(types_css "text/css; charset=utf-8")
set(types_js "text/javascript; charset=utf-8")
set(types_svg "image/svg+xml")

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

# One array per file, then the table h_dashboard.c reads.
set(body "")
set(table "")
set(i 0)
foreach(f IN LISTS assets ITEMS index.html)
  if(f STREQUAL "index.html")
    set(src "${OUT}.index")
    set(path "index.html")
    set(etag "${index_etag}")
    set(type "${types_html}")
  else()
    set(src "${DIR}/${f}")
    set(path "${hashed_${f}}")
    set(etag "${etag_${f}}")
    get_filename_component(ext "${f}" LAST_EXT)
    string(SUBSTRING "${ext}" 1 -1 ext)
    set(type "${types_${ext}}")
  endif()
  file(SIZE "${src}" size)
  math(EXPR total "${total} + ${size}")
  file(READ "${src}" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(REGEX REPLACE "((0x..,){24})" "\\1\n" hex "${hex}")
  string(APPEND body "static const unsigned char f${i}[] = {\n${hex}0};\n")
  string(APPEND table "    {\"${path}\", \"${type}\", f${i}, ${size}, \"\\\"${etag}\\\"\"},\n")
  math(EXPR i "${i} + 1")
endforeach()
if(total GREATER MAX)
  message(FATAL_ERROR "embed_web: the dashboard is ${total} bytes, over its budget of ${MAX}")
endif()

file(WRITE "${OUT}.tmp" "/* generated from ${DIR} by embed_web.cmake; do not edit */
#include \"server.h\"

${body}
const struct web_file web_files[] = {
${table}};
const size_t web_nfiles = ${i};
")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp" "${OUT}.index")
