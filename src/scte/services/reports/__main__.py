from scte.services.reports.service import main

main()
