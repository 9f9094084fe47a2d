# Builds and runs a consumer project of crew's, run with cmake -P. MODE is
#   install:      install crew from CREW_BINARY_DIR into a prefix under WORK_DIR and build
#                 CONSUMER_SOURCE_DIR against it with find_package;
#   subdirectory: build CONSUMER_SOURCE_DIR, which adds CREW_SOURCE_DIR with add_subdirectory.
file(REMOVE_RECURSE ${WORK_DIR})
function(run)
    execute_process(COMMAND ${ARGV} RESULT_VARIABLE result)
    if(NOT result EQUAL 0)
        message(FATAL_ERROR "failed (${result}): ${ARGV}")
    endif()
endfunction()
if(MODE STREQUAL "install")
    set(prefix ${WORK_DIR}/prefix)
    run(${CMAKE_COMMAND} --install ${CREW_BINARY_DIR} --prefix ${prefix})
    set(locate -DCMAKE_PREFIX_PATH=${prefix})
    # Exactly the headers cmake/layers.cmake lists are installed: src/'s private ones stay behind.
    include(${CREW_SOURCE_DIR}/cmake/layers.cmake)
    set(listed "")
    foreach(layer IN LISTS crew_layers)
        list(APPEND listed ${crew_${layer}_headers})
    endforeach()
    file(GLOB_RECURSE installed RELATIVE ${prefix}/include/crew ${prefix}/include/crew/*)
    list(SORT listed)
    list(SORT installed)
    if(NOT installed STREQUAL listed)
        message(FATAL_ERROR "installed headers differ from cmake/layers.cmake's list:\n"
                            "installed: ${installed}\nlisted: ${listed}")
    endif()
else()
    set(locate -DCREW_SOURCE_DIR=${CREW_SOURCE_DIR})
endif()
# The consumer is built with crew's flags: a sanitizer build's library needs the sanitizers' runtime.
run(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build ${locate}
    "-DCMAKE_CXX_FLAGS=${CONSUMER_CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_LINKER_FLAGS}")
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)
file(REMOVE_RECURSE ${WORK_DIR})
