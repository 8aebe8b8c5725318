from scte.services.search.service import main

main()
