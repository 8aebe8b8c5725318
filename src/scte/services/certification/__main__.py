from scte.services.certification.service import main

main()
