"""Valid form data for every step of both SOPs, as a user would fill them in."""
import hashlib

DPMK = "dpmk-pemutakhiran-website"
DINSOS = "dinsos-website-medsos"

EVIDENCE = hashlib.sha256(b"foto kegiatan musrenbang").hexdigest()

STEP_DATA = {
    (DPMK, "step1"): {
        "nomor_agenda": "012/2026", "tanggal_berita": "2026-11-20", "jenis_berita": "Kalurahan",
        "judul_berita": "Musrenbang Kalurahan Sabdodadi",
        "isi_berita": "Musyawarah perencanaan pembangunan kalurahan dihadiri lurah dan warga.",
        "bukti_multimedia": [EVIDENCE],
    },
    (DPMK, "step2"): {"paraf_kabid_ada": True, "klasifikasi_arsip": "400.14.1.3"},
    (DPMK, "step3"): {"persetujuan_sekdin": "YA"},
    (DPMK, "step4"): {"url_berita": "https://dpmk.bantulkab.go.id/berita/musrenbang", "tanggal_tayang": "2026-11-21"},
    (DPMK, "step5"): {"nomor_arsip": "ARS-2026-0012", "lokasi_filing": "Filing kabinet A, laci 2"},
    (DINSOS, "step1"): {
        "judul": "Penyaluran bantuan sosial", "apa": "Penyaluran bansos", "siapa": "Dinas Sosial",
        "kapan": "2026-11-19", "dimana": "Kalurahan Trirenggo", "mengapa": "Program bantuan pangan",
        "bagaimana": "Dibagikan langsung kepada penerima", "narasi_singkat": "Dinas Sosial menyalurkan bantuan "
        "pangan kepada 120 keluarga penerima manfaat.", "foto_video": [EVIDENCE],
    },
    (DINSOS, "step2"): {"materi_terpilih": [EVIDENCE], "kanal": ["Website", "Instagram"],
                        "judul_rilis": "Bansos pangan tersalurkan",
                        "naskah_rilis": "Sebanyak 120 keluarga menerima bantuan pangan hari ini."},
    (DINSOS, "step3"): {"persetujuan_ketua": "YA"},
    (DINSOS, "step4"): {"url_website": "https://sosial.bantulkab.go.id/berita/bansos", "tanggal_tayang": "2026-11-21"},
}

REJECT = {
    (DPMK, "step3"): {"persetujuan_sekdin": "TIDAK", "alasan_penolakan": "Foto kurang jelas, mohon diganti."},
    (DINSOS, "step3"): {"persetujuan_ketua": "TIDAK", "alasan_penolakan_ketua": "Narasi belum memuat 5W+1H."},
}

# lane -> demo user
ACTORS = {
    "Petugas Penerima Berita/Informasi": "dpmk.penerima", "Kasubbag": "dpmk.kasubbag",
    "Sekdin": "dpmk.sekdin", "Operator Website": "dpmk.operator",
    "Admin Bidang/Petugas Lapangan": "dinsos.petugas", "Pengelola Website": "dinsos.pengelola",
    "Ketua Tim Kerja": "dinsos.ketua",
}


def checklist(process_key: str, step: str) -> list[str]:
    """Every Persyaratan item of a shipped step (what a user ticks when all is at hand)."""
    import json
    from pathlib import Path
    sop = json.loads((Path(__file__).parent.parent / "processes" / process_key / "sop.json").read_text())
    return list(sop["steps"][step].get("requirements") or [])
