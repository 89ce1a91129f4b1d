# Source this file (". P/bin/setenv.bash") to use the distbarrier install at P, like CANN's set_env.sh.
_distbarrier_home="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ASCEND_TOOLKIT_HOME="${_distbarrier_home}"
export ASCEND_HOME_PATH="${_distbarrier_home}"
export DISTBARRIER_HOME="${_distbarrier_home}"
export LD_LIBRARY_PATH="${_distbarrier_home}/lib64${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"
export LIBRARY_PATH="${_distbarrier_home}/lib64${LIBRARY_PATH:+:${LIBRARY_PATH}}"
export CPLUS_INCLUDE_PATH="${_distbarrier_home}/include${CPLUS_INCLUDE_PATH:+:${CPLUS_INCLUDE_PATH}}"
export CMAKE_PREFIX_PATH="${_distbarrier_home}${CMAKE_PREFIX_PATH:+:${CMAKE_PREFIX_PATH}}"
# The Python package (import distbarrier), for /usr/bin/python3.
export PYTHONPATH="${_distbarrier_home}/lib64/python${PYTHONPATH:+:${PYTHONPATH}}"
export PATH="${_distbarrier_home}/bin${PATH:+:${PATH}}"
unset _distbarrier_home
