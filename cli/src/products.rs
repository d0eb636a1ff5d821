//! `pz release …` and `pz product …`: the product store's releases and product records, for
//! operators, straight on the metadata database. Every command acts as a user (`--as`), with
//! that user's rights: the store decides what they may see and change, as it does for
//! `pz serve`'s clients.

use std::path::PathBuf;

use pz_catalogs::store::{
    MetadataStore, NewProduct, NewRelease, Product, ProductQuery, ProductType, Release, StoreError,
};

use crate::error::CliError;

#[derive(clap::Subcommand, Debug)]
pub enum ReleaseCommand {
    /// Add a data release (admins).
    Add {
        name: String,
        #[arg(long, value_name = "TEXT")]
        display_name: String,
        /// Markdown.
        #[arg(long, value_name = "TEXT", default_value = "")]
        description: String,
        /// Seen by every user; otherwise only by its groups' members and admins.
        #[arg(long)]
        public: bool,
        /// A group whose members see the release (repeatable).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// The user to act as.
        #[arg(long = "as", value_name = "USER")]
        caller: String,
    },
    /// List the releases the user may see.
    List {
        #[arg(long = "as", value_name = "USER")]
        caller: String,
    },
    /// Replace the access groups of a release (admins).
    Groups {
        name: String,
        /// A group whose members see the release (repeatable; none: only admins).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        #[arg(long = "as", value_name = "USER")]
        caller: String,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum ProductCommand {
    /// The product types, by internal name.
    Types,
    /// List the products the user may see.
    List {
        #[arg(long = "as", value_name = "USER")]
        caller: String,
        /// FIELD=VALUE (repeatable): product_type, release, official_product, status,
        /// uploaded_by, search.
        #[arg(long = "filter", value_name = "FIELD=VALUE")]
        filters: Vec<String>,
        /// A field, or -field for descending: id, internal_name, display_name,
        /// product_type, created_at, updated_at, …
        #[arg(long, value_name = "FIELD", allow_hyphen_values = true)]
        order: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, default_value_t = 0)]
        offset: i64,
    },
    /// One product's record, by id or internal name.
    Show {
        product: String,
        #[arg(long = "as", value_name = "USER")]
        caller: String,
    },
    /// Register a new product (REGISTERING until its files are uploaded and it is published).
    Create {
        display_name: String,
        /// Its type's internal name (see `pz product types`).
        #[arg(long = "type", value_name = "TYPE")]
        product_type: String,
        #[arg(long, value_name = "NAME")]
        release: Option<String>,
        #[arg(long, value_name = "CODE")]
        pz_code: Option<String>,
        /// Markdown.
        #[arg(long, value_name = "TEXT", default_value = "")]
        description: String,
        /// A Rubin-official product (admins).
        #[arg(long)]
        official: bool,
        #[arg(long = "as", value_name = "USER")]
        caller: String,
    },
}

fn usage(e: StoreError) -> CliError {
    CliError::Usage(e.to_string())
}

/// `s` as one CSV field: quoted when it holds a separator, a quote or a line break.
fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

const RELEASE_HEADER: &str = "name,display_name,is_public,access_groups,created_unix";

fn release_line(r: &Release) -> String {
    format!(
        "{},{},{},{},{}",
        csv(&r.name),
        csv(&r.display_name),
        r.is_public,
        csv(&r.access_groups.join(";")),
        r.created_unix
    )
}

const PRODUCT_HEADER: &str = "id,internal_name,display_name,product_type,release,official_product,pz_code,uploaded_by,status,created_unix,updated_unix";

fn product_line(p: &Product) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{},{},{}",
        p.id,
        csv(&p.internal_name),
        csv(&p.display_name),
        p.product_type.name(),
        csv(p.release.as_deref().unwrap_or("")),
        p.official_product,
        csv(p.pz_code.as_deref().unwrap_or("")),
        csv(&p.uploaded_by),
        p.status.name(),
        p.created_unix,
        p.updated_unix
    )
}

pub async fn run_release(
    cmd: &ReleaseCommand,
    data_dir: &Option<PathBuf>,
    url: &Option<String>,
) -> Result<(), CliError> {
    let store = crate::users::store(data_dir, url).await?;
    match cmd {
        ReleaseCommand::Add {
            name,
            display_name,
            description,
            public,
            groups,
            caller,
        } => {
            let new = NewRelease {
                name: name.clone(),
                display_name: display_name.clone(),
                description: description.clone(),
                is_public: *public,
                access_groups: groups.clone(),
            };
            let r = store.create_release(caller, &new).await.map_err(usage)?;
            println!("{RELEASE_HEADER}\n{}", release_line(&r));
        }
        ReleaseCommand::List { caller } => {
            println!("{RELEASE_HEADER}");
            for r in store.releases(caller).await.map_err(usage)? {
                println!("{}", release_line(&r));
            }
        }
        ReleaseCommand::Groups {
            name,
            groups,
            caller,
        } => {
            let r = store
                .set_release_groups(caller, name, groups)
                .await
                .map_err(usage)?;
            println!("{RELEASE_HEADER}\n{}", release_line(&r));
        }
    }
    Ok(())
}

/// The query `--filter`, `--order`, `--limit` and `--offset` describe; a filter that is not
/// FIELD=VALUE, an unknown field or order, is an error naming it.
fn product_query(
    filters: &[String],
    order: &Option<String>,
    limit: i64,
    offset: i64,
) -> Result<ProductQuery, StoreError> {
    let mut q = ProductQuery {
        limit,
        offset,
        ..ProductQuery::default()
    };
    for f in filters {
        let (field, value) = f
            .split_once('=')
            .ok_or_else(|| StoreError::Invalid(format!("--filter '{f}' is not FIELD=VALUE")))?;
        q.filter.set(field.trim(), value.trim())?;
    }
    if let Some(o) = order {
        q.order = o.parse()?;
    }
    Ok(q)
}

async fn run_product_on(store: &MetadataStore, cmd: &ProductCommand) -> Result<(), StoreError> {
    match cmd {
        ProductCommand::Types => {
            println!("name,display_name");
            for t in ProductType::ALL {
                println!("{},{}", t.name(), csv(t.display_name()));
            }
        }
        ProductCommand::List {
            caller,
            filters,
            order,
            limit,
            offset,
        } => {
            let q = product_query(filters, order, *limit, *offset)?;
            let page = store.products(caller, &q).await?;
            println!("{PRODUCT_HEADER}");
            for p in &page.products {
                println!("{}", product_line(p));
            }
            eprintln!(
                "{} of {} products (offset {})",
                page.products.len(),
                page.total,
                q.offset
            );
        }
        ProductCommand::Show { product, caller } => {
            let p = store.product_named(caller, product).await?;
            println!("{PRODUCT_HEADER}\n{}", product_line(&p));
        }
        ProductCommand::Create {
            display_name,
            product_type,
            release,
            pz_code,
            description,
            official,
            caller,
        } => {
            let mut new = NewProduct::new(display_name, product_type.parse()?);
            new.release = release.clone();
            new.pz_code = pz_code.clone();
            new.description = description.clone();
            new.official_product = *official;
            let p = store.create_product(caller, &new).await?;
            println!("{PRODUCT_HEADER}\n{}", product_line(&p));
        }
    }
    Ok(())
}

pub async fn run_product(
    cmd: &ProductCommand,
    data_dir: &Option<PathBuf>,
    url: &Option<String>,
) -> Result<(), CliError> {
    let store = crate::users::store(data_dir, url).await?;
    run_product_on(&store, cmd).await.map_err(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_separators_are_quoted() {
        assert_eq!(csv("DES Y3"), "DES Y3");
        assert_eq!(csv("a, b"), "\"a, b\"");
        assert_eq!(csv("say \"z\""), "\"say \"\"z\"\"\"");
    }

    #[test]
    fn list_options_become_a_query_or_name_what_is_wrong() {
        let q = product_query(
            &["product_type=redshift_catalog".into(), "search=des".into()],
            &Some("-created_at".into()),
            10,
            20,
        )
        .unwrap();
        assert_eq!(q.filter.product_type, Some(ProductType::RedshiftCatalog));
        assert_eq!(q.filter.search.as_deref(), Some("des"));
        assert!(q.order.descending);
        assert_eq!((q.limit, q.offset), (10, 20));
        let e = product_query(&["colour=red".into()], &None, 10, 0).unwrap_err();
        assert!(
            e.to_string().contains("unknown product filter 'colour'"),
            "{e}"
        );
        let e = product_query(&["status".into()], &None, 10, 0).unwrap_err();
        assert!(e.to_string().contains("not FIELD=VALUE"), "{e}");
    }
}
