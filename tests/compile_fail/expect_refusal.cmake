# Builds TARGET in BUILD_DIR and passes only when the build fails with exactly one compiler error,
# crew's own message MESSAGE (a regular expression): no follow-on template errors after it.
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                OUTPUT_VARIABLE output ERROR_VARIABLE output RESULT_VARIABLE status)
if(status EQUAL 0)
    message(FATAL_ERROR "${TARGET} compiled; crew should have refused it")
endif()
if(NOT output MATCHES "${MESSAGE}")
    message(FATAL_ERROR "${TARGET} failed without crew's message '${MESSAGE}':\n${output}")
endif()
string(REGEX MATCHALL "error:" errors "${output}")
list(LENGTH errors count)
if(NOT count EQUAL 1)
    message(FATAL_ERROR "${TARGET}: ${count} errors where crew's message should be the only one:\n${output}")
endif()
message(STATUS "${TARGET} refused with crew's message alone")
