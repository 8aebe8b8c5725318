from scte.services.companies.service import main

main()
