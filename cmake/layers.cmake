# crew's layers, lowest first, and the headers each one owns. A file may include headers of its own
# layer and of the layers below it, never above (docs/internals.md, "Layers"). src/CMakeLists.txt
# builds each layer's sources against only the headers allowed to it, and the test
# crew.include_rules (tests/layers/) checks every file under include/ and src/ against this list.
# A new header goes in the list of the layer it belongs to; a new layer gets a folder under src/.
set(crew_layers foundation process shared pool parallel cluster)
# The layers whose objects make up crew::crew. The cluster is a library of its own, crew::cluster
# (design.md section 6), so that programs on one machine never link its transport and signatures.
set(crew_core_layers foundation process shared pool parallel)

# Headers under include/crew/, by layer. Private headers live in src/<layer>/ and need no entry.
set(crew_foundation_headers
    error.hpp log.hpp range.hpp remote_exception.hpp serialization.hpp timeout.hpp
    detail/byte_stream.hpp detail/callable.hpp detail/code_address.hpp detail/futex.hpp
    detail/carried_span.hpp detail/interrupt.hpp detail/shared_block.hpp detail/shared_mapping.hpp detail/spin.hpp
    detail/unique_fd.hpp detail/zip.hpp)
set(crew_process_headers
    init.hpp process.hpp start_method.hpp)
set(crew_shared_headers
    pipe.hpp queue.hpp shared_memory.hpp shared_value.hpp synchronize.hpp wait.hpp
    detail/message_ring.hpp detail/ring_chain.hpp detail/ring_pair.hpp)
set(crew_pool_headers
    executor.hpp future.hpp map_options.hpp pool.hpp progress.hpp
    detail/chunking.hpp detail/imap_results.hpp detail/job_queue.hpp detail/pool_core.hpp
    detail/progress.hpp detail/pull_iterator.hpp detail/reduce_task.hpp detail/result_sinks.hpp
    detail/submitter.hpp
    detail/task.hpp detail/task_transport.hpp detail/worker_protocol.hpp)
set(crew_parallel_headers
    crew.hpp estimate.hpp map_reduce.hpp parallel.hpp parallel_backend.hpp)
set(crew_cluster_headers)
