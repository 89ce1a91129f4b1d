# Runs distbarrier-perf --hosts 2 briefly and checks its table: the "#" lines, the column line
# and one row for 2 hosts with a figure in every column (MPI may be "-"; the UCX dissemination
# floor may not). No timing is asserted.
# Not root: the tool prints "# hosts: skipped" and the test is skipped (SKIP_REGULAR_EXPRESSION).
#   cmake -DPERF=path -P check_hosts.cmake
execute_process(
  COMMAND "${PERF}" --hosts 2 -n 200 --repeat 1 --timeout 25
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err
  RESULT_VARIABLE rc)
message(STATUS "output:\n${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "distbarrier-perf --hosts exited with ${rc}")
endif()
if(out MATCHES "# hosts: skipped")
  return()
endif()
string(REPLACE ";" "," out "${out}")
string(REPLACE "\n" ";" lines "${out}")
set(header FALSE)
set(columns FALSE)
set(rows "")
set(n "[0-9]+\\.[0-9]+")
foreach(line IN LISTS lines)
  if(line MATCHES "^# distbarrier-perf --hosts: H network namespaces .*-n 200 -w 200 --repeat 1 ")
    set(header TRUE)
  elseif(line MATCHES "^ +hosts +barrier +barrier\\.range +UCX\\.RTT +log2H +ratio +goal +UCX\\.dissem +dissem\\.ratio +barrier/dissem +MPI +barrier/MPI$")
    set(columns TRUE)
  elseif(line MATCHES "^ +([0-9]+) +${n} +${n}-${n} +${n} +1 +${n} +1\\.5 +${n} +${n} +${n} +(${n}|-) +([0-9]+\\.[0-9]+|-)$")
    list(APPEND rows "${CMAKE_MATCH_1}")
  elseif(line MATCHES "^#" OR line STREQUAL "")
  else()
    message(FATAL_ERROR "unexpected line: '${line}'")
  endif()
endforeach()
if(NOT header OR NOT columns)
  message(FATAL_ERROR "no header (${header}) or column line (${columns})")
endif()
if(NOT rows STREQUAL "2")
  message(FATAL_ERROR "rows for hosts '${rows}', expected 2")
endif()
