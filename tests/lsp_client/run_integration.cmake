# Runs client.js against the hearth binary: cmake -DNODE= -DNPM= -DDIR= -DHEARTH= -DMODEL= -P
foreach(var NODE NPM)
  if(NOT ${var} OR ${var} MATCHES "-NOTFOUND$")
    message(FATAL_ERROR "lsp_integration: ${var} not found; install node and npm (the test "
                        "cannot pass without them)")
  endif()
endforeach()
if(NOT HEARTH OR NOT EXISTS "${HEARTH}")
  message(FATAL_ERROR "lsp_integration: the hearth binary was not built ('${HEARTH}')")
endif()
if(NOT EXISTS "${MODEL}")
  message(FATAL_ERROR "lsp_integration: test model missing: ${MODEL}")
endif()

if(NOT EXISTS "${DIR}/node_modules/vscode-languageserver-protocol/package.json")
  execute_process(COMMAND "${NPM}" ci --no-audit --no-fund
                  WORKING_DIRECTORY "${DIR}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "lsp_integration: npm ci failed (${rc})")
  endif()
endif()

execute_process(COMMAND "${NODE}" "${DIR}/client.js" "${HEARTH}" "${MODEL}"
                WORKING_DIRECTORY "${DIR}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "lsp_integration: client.js failed (${rc})")
endif()
