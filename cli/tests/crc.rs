//! `pz combine-redshifts` on small catalogs whose outcome follows from the CRC rules.
//!
//! desi (DESI flags, 0 = secure → 4), vvds (VVDS flags), mine (quality in [0, 1], other
//! column names, grism), user (homogenized flags given, two stars). Offsets of 0.1–0.3″ make
//! three duplicate groups:
//! * desi a1 (4, s) + vvds b1 (3, s): a1 kept, b1 discarded;
//! * desi a2 (4, s, z 1.0) + vvds b2 (4, s, z 1.3) + mine c2 (4, g): c2 loses on instrument,
//!   a2 and b2 disagree in z → unresolved tie;
//! * user d3 (4, s, z 0.7000) + user d4 (4, s, z 0.7005): agree within 0.001 → the smaller
//!   CRD_ID (d3) is kept.
//!   The two stars sit 0.1″ apart but are set aside (tie_result 3).

use std::path::Path;
use std::process::{Command, Output};

fn pz(args: &[&str]) -> Output {
    let data = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_pz"))
        .arg("--data-dir")
        .arg(data.path())
        .args(args)
        .output()
        .unwrap()
}

fn csv(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn sql(q: &str) -> String {
    let o = pz(&["sql", "-c", q, "--format", "csv"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const D1: f64 = 0.1 / 3600.0;

#[test]
fn combine_redshift_catalogs() {
    let w = tempfile::tempdir().unwrap();
    let desi = csv(
        w.path(),
        "desi.csv",
        "id,ra,dec,z,z_flag,survey\na1,10.0,0.0,0.5,0,DESI\na2,20.0,0.0,1.0,0,DESI\n",
    );
    let vvds = csv(
        w.path(),
        "vvds.csv",
        &format!(
            "id,ra,dec,z,z_flag,survey\nb1,{},0.0,0.5004,3,VVDS\nb2,{},0.0,1.3,4,VVDS\nb3,40.0,0.0,2.0,9,VVDS\n",
            10.0 + D1,
            20.0 + 2.0 * D1
        ),
    );
    let mine = csv(
        w.path(),
        "mine.csv",
        &format!(
            "ID,RA,DEC,Z,QUAL\nc1,50.0,0.0,0.3,0.95\nc2,{},0.0,1.0003,0.999\n",
            20.0 - 3.0 * D1
        ),
    );
    let user = csv(
        w.path(),
        "user.csv",
        &format!(
            "id,ra,dec,z,z_flag_homogenized,instrument_type_homogenized,mag\nd1,30.0,0.0,0.0,6,s,17.1\nd2,{},0.0,0.0,6,s,17.2\nd3,60.0,0.0,0.7000,4,s,20.0\nd4,{},0.0,0.7005,4,s,20.1\n",
            30.0 + D1,
            60.0 + 2.0 * D1
        ),
    );
    let run = |out: &Path, extra: &[&str]| -> Output {
        let mut args: Vec<String> = vec![
            "combine-redshifts".into(),
            "--input".into(),
            format!("desi={desi}"),
            "--input".into(),
            format!("vvds={vvds}"),
            "--input".into(),
            format!("mine={mine}"),
            "--input".into(),
            format!("user={user}"),
            "--map".into(),
            "mine:id=ID,ra=RA,dec=DEC,z=Z,z_flag=QUAL".into(),
            "--instrument-type".into(),
            "mine=g".into(),
            "--extra-columns".into(),
            "mag".into(),
            "--out".into(),
            out.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        pz(&refs)
    };

    // Marked: every row with its homogenized flag, tie_result and group.
    let marked = w.path().join("marked");
    let o = run(&marked, &["--mode", "concatenate_and_mark_duplicates"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let f = marked.join("combined.parquet").display().to_string();
    assert_eq!(
        sql(&format!(
            "SELECT \"CRD_ID\", id, source, z_flag_homogenized, instrument_type_homogenized, tie_result, group_id IS NOT NULL AS grouped, mag FROM '{f}' ORDER BY \"CRD_ID\""
        )),
        "CRD_ID,id,source,z_flag_homogenized,instrument_type_homogenized,tie_result,grouped,mag\n\
         CRD1_1,a1,desi,4,s,1,true,\n\
         CRD1_2,a2,desi,4,s,2,true,\n\
         CRD2_1,b1,vvds,3,s,0,true,\n\
         CRD2_2,b2,vvds,4,s,2,true,\n\
         CRD2_3,b3,vvds,2,s,1,false,\n\
         CRD3_1,c1,mine,3,g,1,false,\n\
         CRD3_2,c2,mine,4,g,0,true,\n\
         CRD4_1,d1,user,6,s,3,false,17.1\n\
         CRD4_2,d2,user,6,s,3,false,17.2\n\
         CRD4_3,d3,user,4,s,1,true,20.0\n\
         CRD4_4,d4,user,4,s,0,true,20.1\n"
    );
    assert_eq!(
        sql(&format!(
            "SELECT count(DISTINCT group_id) AS groups FROM '{f}'"
        )),
        "groups\n3\n"
    );
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(marked.join("provenance.json")).unwrap())
            .unwrap();
    assert_eq!(p["rows_in"], 11);
    assert_eq!(p["inputs"][3]["rows"], 4);

    // Removing duplicates, with each tie policy and a flag cut.
    for (policy, cut, expect) in [
        ("keep_all", None, "a1 a2 b2 b3 c1 d1 d2 d3"),
        ("remove_all", None, "a1 b3 c1 d1 d2 d3"),
        ("keep_all", Some("4"), "a1 a2 b2 d1 d2 d3"),
    ] {
        let out = w
            .path()
            .join(format!("rm-{policy}-{}", cut.unwrap_or("none")));
        let mut extra = vec![
            "--mode",
            "concatenate_and_remove_duplicates",
            "--ties",
            policy,
        ];
        if let Some(c) = cut {
            extra.extend(["--flag-cut", c]);
        }
        let o = run(&out, &extra);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let ids = sql(&format!(
            "SELECT string_agg(id, ' ' ORDER BY id) AS ids FROM '{}'",
            out.join("combined.parquet").display()
        ));
        assert_eq!(ids, format!("ids\n{expect}\n"), "{policy} {cut:?}");
    }
    let out = w.path().join("draw");
    let o = run(&out, &["--ties", "draw_one", "--seed", "3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ids = sql(&format!(
        "SELECT string_agg(id, ' ' ORDER BY id) AS ids FROM '{}'",
        out.join("combined.parquet").display()
    ));
    assert!(
        ids == "ids\na1 a2 b3 c1 d1 d2 d3\n" || ids == "ids\na1 b2 b3 c1 d1 d2 d3\n",
        "{ids}"
    );

    // Concatenation only: no tie_result, no group.
    let out = w.path().join("concat");
    assert!(run(&out, &["--mode", "concatenate"]).status.success());
    assert_eq!(
        sql(&format!(
            "SELECT count(*) AS n, count(tie_result) AS t FROM '{}'",
            out.join("combined.parquet").display()
        )),
        "n,t\n11,0\n"
    );

    // Bad input: a survey the translation does not know, a bad rule, bad positions.
    let nope = csv(
        w.path(),
        "nope.csv",
        "id,ra,dec,z,z_flag,survey\nx,1.0,1.0,0.5,3,NOPE\n",
    );
    let bad_out = w.path().join("bad");
    let o = pz(&[
        "combine-redshifts",
        "--input",
        &format!("n={nope}"),
        "--out",
        bad_out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains("no flag translation for survey 'NOPE'")
            && err.contains("nope.csv"),
        "{err}"
    );
    let rules = csv(w.path(), "rules.yaml", "surveys:\n  NOPE:\n    instrument_type: s\n    rules:\n      - {when: \"about 3\", value: 4}\n");
    let o = pz(&[
        "combine-redshifts",
        "--input",
        &format!("n={nope}"),
        "--translation",
        &rules,
        "--out",
        bad_out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("bad rule 'about 3'") && err.contains("rules.yaml"),
        "{err}"
    );
    let nan = csv(
        w.path(),
        "nan.csv",
        "id,ra,dec,z,z_flag,survey\nx,1.0,1.0,0.5,3,VVDS\ny,NaN,1.0,0.5,3,VVDS\n",
    );
    let o = pz(&[
        "combine-redshifts",
        "--input",
        &format!("n={nan}"),
        "--out",
        bad_out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains("nan.csv")
            && err.contains("column 'ra' row 2")
            && err.contains("NaN is not a position"),
        "{err}"
    );
    let noz = csv(w.path(), "noz.csv", "id,ra,dec\nx,1.0,1.0\n");
    let o = pz(&[
        "combine-redshifts",
        "--input",
        &format!("n={noz}"),
        "--out",
        bad_out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("has no 'z' column"),
        "{err}"
    );
    assert!(!bad_out.exists());
}
